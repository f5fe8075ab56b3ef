/*
 * The composer's paperclip: upload a file into the selected chat.
 */
import { $ } from '../shared/dom.js';
import { app, selectedChat } from '../shared/state.js';
import { toast } from '../shared/toasts.js';
import { uploadFile, uploadError } from '../shared/attachments.js';
import { sendChatMessage } from './outbox.js';
import { updateCharCount, MAX_MESSAGE_CHARS } from './chat-view.js';

function onChatFileChosen() {
  const input = $('file-input');
  const file = input.files && input.files[0];
  input.value = '';
  const chat = selectedChat();
  if (!file || !chat || chat.ended) return;
  const btn = $('attach-button');
  btn.disabled = true;
  btn.classList.add('is-busy');
  uploadFile(file, { session_id: chat.id }).then((att) => {
    let text = '';
    if (chat.id === app.selectedId) {
      text = $('message-input').value.trim();
      if (text.length > MAX_MESSAGE_CHARS) text = '';
      if (text) {
        $('message-input').value = '';
        chat.draft = '';
        updateCharCount();
      }
    }
    sendChatMessage(chat, text, [att]);
  }).catch((err) => {
    toast(uploadError(err, file.name), 'error');
  }).then(() => {
    btn.classList.remove('is-busy');
    const current = selectedChat();
    btn.disabled = !current || current.ended;
  });
}

export function initAttach() {
  $('attach-button').addEventListener('click', () => { $('file-input').click(); });
  $('file-input').addEventListener('change', onChatFileChosen);
}
