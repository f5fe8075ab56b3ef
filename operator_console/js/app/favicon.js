/*
 * The unread count on the favicon: /favicon.svg with a red badge, drawn on a
 * canvas and set as a data: URL icon; the plain icon again when the count is 0.
 */
const FAVICON = '/favicon.svg';
let faviconImage = null;
let faviconShown = 0;

function faviconLink() {
  let link = document.querySelector('link[rel="icon"]');
  if (!link) {
    link = document.createElement('link');
    link.rel = 'icon';
    document.head.appendChild(link);
  }
  return link;
}

function drawFavicon(n) {
  const link = faviconLink();
  if (n <= 0) {
    link.type = 'image/svg+xml';
    link.href = FAVICON;
    return;
  }
  const draw = () => {
    if (faviconShown !== n) return;   // changed meanwhile
    const canvas = document.createElement('canvas');
    canvas.width = 32;
    canvas.height = 32;
    const g = canvas.getContext('2d');
    if (!g) return;
    try { g.drawImage(faviconImage, 0, 0, 32, 32); } catch (err) { /* not loaded: the badge alone */ }
    g.fillStyle = '#d1242f';
    g.beginPath();
    g.arc(22, 10, 10, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#ffffff';
    g.font = 'bold 14px sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(n > 9 ? '9+' : String(n), 22, 11);
    try {
      link.type = 'image/png';
      link.href = canvas.toDataURL('image/png');
    } catch (err) { /* a tainted canvas: keep the plain icon */ }
  };
  if (!faviconImage) {
    faviconImage = new Image();
    faviconImage.src = FAVICON;
  }
  if (faviconImage.complete) {
    draw();
  } else {
    faviconImage.onload = draw;
    faviconImage.onerror = draw;
  }
}

/** Show the unread count `n` on the favicon (0: the plain icon). */
export function updateFavicon(n) {
  const count = typeof n === 'number' && n > 0 ? Math.floor(n) : 0;
  if (count === faviconShown) return;
  faviconShown = count;
  drawFavicon(count);
}

