"""Real-world shaped inbound mail, as Outlook, Thunderbird, Gmail and Apple Mail write it.

Bytes exactly as they arrive (CRLF, quoted-printable, 8-bit headers where clients
still write them); each forward carries an error message a desk asks customers to send.
"""

from __future__ import annotations

from tests.mail.samples import raw

ERROR_LINE = "Fehler 0x80070005: Zugriff verweigert (Druckdienst)"
"""The forwarded error message every forward below carries."""

OUTLOOK_FORWARD_DE = raw(
    f"""
    From: "Meier, Anna" <anna.meier@kunde.ch>
    To: "Support" <support@desk.example>
    Subject: WG: Druckauftrag bricht ab
    Date: Fri, 4 Dec 2026 09:12:44 +0000
    Message-ID: <AM0PR07MB1234ABCD@AM0PR07MB1234.eurprd07.prod.outlook.com>
    Content-Language: de-CH
    MIME-Version: 1.0
    Content-Type: text/plain; charset="utf-8"
    Content-Transfer-Encoding: 8bit
    X-MS-Has-Attach:
    Thread-Topic: Druckauftrag bricht ab

    Guten Tag

    Anbei die Meldung unserer IT, wie gewünscht.

    Freundliche Grüsse
    Anna Meier

    -----Ursprüngliche Nachricht-----
    Von: IT Helpdesk <it@kunde.ch>
    Gesendet: Donnerstag, 3. Dezember 2026 17:40
    An: Meier, Anna <anna.meier@kunde.ch>
    Betreff: Druckauftrag bricht ab

    Hallo Anna

    Der Server meldet: {ERROR_LINE}
    Bitte an den Hersteller weiterleiten.

    Gruss, IT
    """
)

THUNDERBIRD_FORWARD_FR = raw(
    f"""
    From: Jean Dupont <jean.dupont@client.fr>
    To: support@desk.example
    Subject: Fwd: Erreur d'impression
    Date: Fri, 4 Dec 2026 10:01:02 +0100
    Message-ID: <8f1c2b3a-1d2e-4f50-9a6b-0c1d2e3f4a5b@client.fr>
    User-Agent: Mozilla Thunderbird
    Content-Language: fr
    MIME-Version: 1.0
    Content-Type: text/plain; charset=UTF-8; format=flowed
    Content-Transfer-Encoding: 8bit

    Bonjour,

    voici le message d'erreur transféré.

    Cordialement,
    Jean


    -------- Message transféré --------
    Sujet : Erreur d'impression
    Date : Thu, 3 Dec 2026 18:00:00 +0100
    De : Service informatique <it@client.fr>
    Pour : Jean Dupont <jean.dupont@client.fr>

    Le serveur indique : {ERROR_LINE}
    """
)

OUTLOOK_FORWARD_FR = raw(
    f"""
    From: Claire Martin <claire.martin@client.fr>
    To: support@desk.example
    Subject: TR: Erreur
    Message-ID: <PR1P264MB0001@PR1P264MB0001.FRAP264.PROD.OUTLOOK.COM>
    MIME-Version: 1.0
    Content-Type: text/plain; charset="utf-8"
    Content-Transfer-Encoding: 8bit

    Bonjour, voir ci-dessous.

    -----Message d'origine-----
    De : Service informatique <it@client.fr>
    Envoyé : jeudi 3 décembre 2026 18:00
    À : Claire Martin <claire.martin@client.fr>
    Objet : Erreur

    {ERROR_LINE}
    """
)

GMAIL_FORWARD_EN = raw(
    f"""
    From: Tom Baker <tom@customer.example>
    To: support@desk.example
    Subject: Fwd: Printer error
    Message-ID: <CAF=abc123@mail.gmail.com>
    MIME-Version: 1.0
    Content-Type: multipart/alternative; boundary="000000000000gmailb"

    --000000000000gmailb
    Content-Type: text/plain; charset="UTF-8"

    See below.

    ---------- Forwarded message ---------
    From: IT <it@customer.example>
    Date: Thu, Dec 3, 2026 at 6:00 PM
    Subject: Printer error
    To: Tom Baker <tom@customer.example>


    {ERROR_LINE}

    --000000000000gmailb
    Content-Type: text/html; charset="UTF-8"

    <div dir="ltr">See below.<br><br><div class="gmail_quote"><div dir="ltr"
    class="gmail_attr">---------- Forwarded message ---------<br>From: IT</div><br>
    {ERROR_LINE}</div></div>

    --000000000000gmailb--
    """
)

ITALIAN_FORWARD = raw(
    f"""
    From: Luca Rossi <luca.rossi@cliente.it>
    To: support@desk.example
    Subject: I: Errore di stampa
    Message-ID: <it-forward-1@cliente.it>
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: 8bit

    Buongiorno, inoltro il messaggio.

    -----Messaggio originale-----
    Da: IT <it@cliente.it>
    Inviato: giovedì 3 dicembre 2026 18:00
    A: Luca Rossi <luca.rossi@cliente.it>
    Oggetto: Errore di stampa

    {ERROR_LINE}
    """
)

APPLE_FORWARD = raw(
    f"""
    From: Mia Keller <mia@kunde.ch>
    To: support@desk.example
    Subject: Fwd: Druckfehler
    Message-ID: <A1B2C3D4-0000-1111-2222-333344445555@kunde.ch>
    Content-Type: text/plain; charset=utf-8

    Hallo, siehe unten.

    Begin forwarded message:

    From: IT <it@kunde.ch>
    Subject: Druckfehler
    Date: 3 December 2026 at 18:00:00 CET
    To: Mia Keller <mia@kunde.ch>

    {ERROR_LINE}
    """
)

OUTLOOK_BLOCK_EN = raw(
    f"""
    From: Sam Lee <sam@customer.example>
    To: support@desk.example
    Subject: FW: error
    Message-ID: <outlook-block-en@customer.example>
    Content-Type: text/plain; charset=utf-8

    Please see the error below.

    ________________________________
    From: IT <it@customer.example>
    Sent: Thursday, December 3, 2026 6:00 PM
    To: Sam Lee <sam@customer.example>
    Subject: error

    {ERROR_LINE}
    """
)

FORWARDS = {
    "outlook-de": OUTLOOK_FORWARD_DE,
    "thunderbird-fr": THUNDERBIRD_FORWARD_FR,
    "outlook-fr": OUTLOOK_FORWARD_FR,
    "gmail-en": GMAIL_FORWARD_EN,
    "outlook-it": ITALIAN_FORWARD,
    "apple-mail": APPLE_FORWARD,
    "outlook-block-en": OUTLOOK_BLOCK_EN,
}


def outlook_reply_de(number: int, in_reply_to: str) -> bytes:
    """Anna's Outlook reply ("AW:") on ticket ``number``, quoting the desk's mail."""
    return raw(
        f"""
        From: "Meier, Anna" <anna.meier@kunde.ch>
        To: support@desk.example
        Subject: AW: [#{number}] Druckauftrag bricht ab
        Message-ID: <AM0PR07MB9999REPLY@AM0PR07MB1234.eurprd07.prod.outlook.com>
        In-Reply-To: {in_reply_to}
        References: {in_reply_to}
        Content-Type: text/plain; charset="utf-8"
        Content-Transfer-Encoding: 8bit

        Danke, der Neustart hat geholfen.

        Anna

        Von: Support <support@desk.example>
        Gesendet: Freitag, 4. Dezember 2026 11:00
        An: Meier, Anna <anna.meier@kunde.ch>
        Betreff: [#{number}] Druckauftrag bricht ab

        Bitte starten Sie den Druckdienst neu.
        """
    )


def thunderbird_reply_fr(number: int, in_reply_to: str) -> bytes:
    """Jean's Thunderbird reply on ticket ``number`` (only In-Reply-To finds it)."""
    return raw(
        f"""
        From: Jean Dupont <jean.dupont@client.fr>
        To: support@desk.example
        Subject: Re: Erreur d'impression
        Message-ID: <tb-reply-fr-{number}@client.fr>
        In-Reply-To: {in_reply_to}
        References: {in_reply_to}
        Content-Type: text/plain; charset=UTF-8; format=flowed
        Content-Transfer-Encoding: 8bit

        Merci, cela fonctionne de nouveau.

        Le 04/12/2026 à 11:00, Support a écrit :
        > Veuillez redémarrer le service d'impression.
        """
    )


LATIN1_8BIT = (
    "From: Jo\u00e3o Silva <joao@cliente.pt>\r\n"
    "To: support@desk.example\r\n"
    "Subject: Ver\u00e3o: Gr\u00f6\u00dfe der Bestellung\r\n"
    "Message-ID: <latin1-8bit@cliente.pt>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="=_latin"\r\n'
    "\r\n"
    "--=_latin\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Die Gr\u00f6\u00dfe stimmt nicht.\r\n"
    "--=_latin\r\n"
    'Content-Type: text/plain; name="HasenundFr\u00f6sche.txt"\r\n'
    'Content-Disposition: attachment; filename="HasenundFr\u00f6sche.txt"\r\n'
    "\r\n"
    "Hasen und Fr\u00f6sche\r\n"
    "--=_latin--\r\n"
).encode("latin-1")
"""Raw Latin-1 bytes in the subject, the sender's name and an attachment's name."""

BROKEN_BOUNDARY = raw(
    """
    From: Broken Client <broken@kunde.ch>
    To: support@desk.example
    Subject: Rechnung Dezember
    Message-ID: <broken-boundary@kunde.ch>
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="----=_Part_0_REAL"

    ------=_Part_0_WRONG
    Content-Type: text/plain; charset=utf-8

    Die Rechnungsnummer 2026-4711 ist doppelt verbucht.
    ------=_Part_0_WRONG--
    """
)
"""The declared boundary never occurs: the parser finds no part at all."""
