/*
 * The supervisor board's state: the snapshot from the `board` frame, kept
 * current with `board_patch` frames (docs/protocol.md).
 */

export const board = {
  state: null,          // the snapshot, patched
  rev: -1,
  range: 'day',         // counters and times: 'hour' or 'day'
  hideOffline: true,
  dom: null,            // built once, on the first snapshot
  rows: new Map(),      // operator id -> {tr, key}
  order: '',            // operator ids in table order, joined
  waiting: [],          // from the operators' `queue` frames
  watch: null,          // the chat being watched
  takingOver: null      // session id of a take_over in flight
};

const STATUS_ORDER = { online: 0, away: 1, offline: 2 };

function sortOperators(rows) {
  return rows.sort((a, b) => {
    const s = (STATUS_ORDER[a.status] || 3) - (STATUS_ORDER[b.status] || 3);
    if (s) return s;
    const n = a.name.toLowerCase().localeCompare(b.name.toLowerCase());
    return n || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  });
}

/** The same as chatserver.board.apply_patch. */
export function applyPatch(state, patch) {
  const out = Object.assign({}, state, patch.set || {});
  if ('ts' in patch) out.ts = patch.ts;
  if (patch.operators) {
    const rows = new Map();
    (state.operators || []).forEach((r) => { rows.set(r.id, r); });
    patch.operators.remove.forEach((id) => { rows.delete(id); });
    patch.operators.upsert.forEach((r) => { rows.set(r.id, r); });
    out.operators = sortOperators(Array.from(rows.values()));
  }
  if (patch.history) {
    const points = new Map();
    (state.history || []).forEach((p) => { points.set(p.t, p); });
    patch.history.points.forEach((p) => { points.set(p.t, p); });
    const since = patch.history.since;
    out.history = Array.from(points.keys()).sort((a, b) => a - b)
      .filter((tm) => since !== null && tm >= since)
      .map((tm) => points.get(tm));
  }
  return out;
}

/** Forget the board (signed out). */
export function resetBoardState() {
  board.state = null;
  board.rev = -1;
  board.dom = null;
  board.rows = new Map();
  board.order = '';
  board.waiting = [];
  board.watch = null;
  board.takingOver = null;
}
