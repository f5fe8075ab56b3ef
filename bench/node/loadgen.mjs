// The load generator of `bench/loadgen.py --load ...`: WebSocket clients in Node (`ws`),
// so that the generator, not the server, is never the bottleneck. loadgen.py starts it
// with one JSON argument (the job) and talks to it by lines:
//
//   stdout "READY"            setup done (sockets open, chats assigned); waits for "GO"
//   stdout "DONE <json>"      the measured phase ended (the server's CPU is read now)
//   stdout "PHASE <json>"     (connect jobs) one phase ended; waits for "GO" for the next
//   stdout "RESULT <json>"    everything; the process exits
//
// Jobs: {"mode": "traffic", "kind": "chat"|"relay", ...} sends visitor -> operator
// (relay: a -> b) messages, closed loop (`window` in flight per sender) or open loop
// (`rate` msg/s in total, latency from each message's scheduled send time, so a
// server that falls behind is charged for the wait: no coordinated omission).
// {"mode": "connect", ...} opens `count` sockets with hello -> welcome (relay: a frame
// and its ack), keeps them open (idle), then closes them and resumes each with its token.
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import WebSocket from "ws";

const job = JSON.parse(process.argv[2]);
// A zero mask: ws skips masking (legal: the mask bit is set, the key is 0); no UTF-8
// check of what the server sends. The generator's cost per frame stays small.
const WS_OPTS = {
  perMessageDeflate: false,
  maxPayload: 1 << 22,
  skipUTF8Validation: true,
  generateMask: () => {},
};
const TEXT_B = Buffer.from('"text":"B');
const CMID_B = Buffer.from('"client_msg_id":"B');
const ACK = Buffer.from('"type":"ack"');

// The number after `marker` in `buf` (digits only), or -1.
function numberAfter(buf, marker) {
  let i = buf.indexOf(marker);
  if (i < 0) return -1;
  i += marker.length;
  let n = 0;
  for (let c = buf[i]; c >= 48 && c <= 57; c = buf[++i]) n = n * 10 + (c - 48);
  return n;
}
const lines = createInterface({ input: process.stdin });
const waiting = [];
lines.on("line", (line) => {
  const w = waiting.shift();
  if (w) w(line.trim());
});
const nextLine = () => new Promise((resolve) => waiting.push(resolve));
const out = (tag, obj) => process.stdout.write(obj === undefined ? `${tag}\n` : `${tag} ${JSON.stringify(obj)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentiles(values) {
  const a = Float64Array.from(values).sort();
  const at = (q) => (a.length ? a[Math.min(a.length - 1, Math.round(q * (a.length - 1)))] : null);
  const r = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
  return { p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(at(1)) };
}

// A socket whose frames go to a swappable handler; `expect` waits for a frame type.
function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, WS_OPTS);
    ws.handler = null;
    ws.inbox = [];
    ws.on("message", (data, isBinary) => {
      if (ws.handler) ws.handler(data, isBinary);
      else ws.inbox.push(JSON.parse(data.toString()));
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function expect(ws, type, pred, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms`)), timeoutMs);
    const check = (frame) => {
      if (frame.type === "error") {
        clearTimeout(timer);
        ws.handler = null;
        reject(new Error(`server error: ${JSON.stringify(frame)}`));
        return true;
      }
      if (frame.type === type && (!pred || pred(frame))) {
        clearTimeout(timer);
        ws.handler = null;
        resolve(frame);
        return true;
      }
      return false;
    };
    while (ws.inbox.length) if (check(ws.inbox.shift())) return;
    ws.handler = (data) => check(JSON.parse(data.toString()));
  });
}

async function limited(count, concurrency, fn) {
  const results = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

function closeAll(sockets) {
  return Promise.all(sockets.map((ws) => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const t = setTimeout(() => { ws.terminate(); resolve(); }, 5000);
    ws.once("close", () => { clearTimeout(t); resolve(); });
    ws.close();
  })));
}

// ------------------------------------------------------------------ traffic
async function setupChat() {
  const n = job.chats;
  const operators = await limited(job.tokens.length, 50, async (i) => {
    const ws = await open(`${job.url}/ws/operator`);
    ws.send(JSON.stringify({ type: "hello", token: job.tokens[i], status: "online" }));
    await expect(ws, "welcome");
    ws.assigned = expect(ws, "chat_assigned", null, 60000);
    return ws;
  });
  const visitors = await limited(n, 50, async (i) => {
    const ws = await open(`${job.url}/ws/visitor`);
    ws.send(JSON.stringify({ type: "hello", name: `pair-${i}` }));
    await expect(ws, "welcome");
    ws.send(JSON.stringify({ type: "message", client_msg_id: "setup", text: `hello from pair ${i}` }));
    await expect(ws, "ack", (f) => f.client_msg_id === "setup");
    return ws;
  });
  const receivers = new Array(n);
  for (const op of operators) {
    const assigned = await op.assigned;
    receivers[Number(assigned.chat.visitor.name.slice(5))] = op;
  }
  return { senders: visitors, receivers, all: [...operators, ...visitors] };
}

async function setupRelay() {
  const pairs = await limited(job.chats, 50, async (i) => {
    const a = await open(`${job.url}/ws/a/p${i}`);
    const b = await open(`${job.url}/ws/b/p${i}`);
    a.send(JSON.stringify({ type: "setup", from: "a" }));
    await expect(b, "setup");
    b.send(JSON.stringify({ type: "setup", from: "b" }));
    await expect(a, "setup");
    return [a, b];
  });
  return { senders: pairs.map((p) => p[0]), receivers: pairs.map((p) => p[1]), all: pairs.flat() };
}

async function traffic() {
  const chat = job.kind === "chat";
  const { senders, receivers, all } = chat ? await setupChat() : await setupRelay();
  await sleep(job.settle_ms ?? 1500);
  const n = job.chats;
  const perChat = job.messages;
  const total = n * perChat;
  const pad = "x".repeat(Math.max(0, job.size - 30));
  const sentAt = new Float64Array(total); // closed loop: the send; open loop: the schedule
  const latency = new Float64Array(total);
  const ackLatency = chat ? new Float64Array(total) : null;
  let delivered = 0;
  let acks = 0;
  let errors = 0;
  const firstErrors = [];
  const closed = job.window > 0;
  const inFlight = new Int32Array(n);
  const nextK = new Int32Array(n);
  let finish;
  const finished = new Promise((r) => { finish = r; });
  const check = () => {
    if (delivered >= total && (!chat || acks >= total)) finish();
  };
  const frameOf = (id) => `{"type":"message","client_msg_id":"B${id}","text":"B${id} ${pad}"}`;
  const sendOne = (i) => {
    const id = i * perChat + nextK[i]++;
    inFlight[i]++;
    if (closed) sentAt[id] = performance.now();
    senders[i].send(frameOf(id));
  };
  const onError = (frame) => {
    errors++;
    if (firstErrors.length < 5) firstErrors.push(frame);
  };
  for (let i = 0; i < n; i++) {
    const chatIndex = i;
    receivers[i].handler = (data) => {
      const now = performance.now();
      const id = numberAfter(data, TEXT_B);
      if (id < 0) {
        const frame = JSON.parse(data.toString());
        if (frame.type === "error") onError(frame);
        return; // not benchmark traffic (a system message, a queue update)
      }
      latency[id] = now - sentAt[id];
      delivered++;
      inFlight[chatIndex]--;
      if (closed && nextK[chatIndex] < perChat) sendOne(chatIndex);
      check();
    };
    senders[i].handler = chat
      ? (data) => {
        const now = performance.now();
        if (data.indexOf(ACK) >= 0) {
          const id = numberAfter(data, CMID_B);
          if (id >= 0) {
            ackLatency[id] = now - sentAt[id];
            acks++;
            check();
          }
          return;
        }
        const frame = JSON.parse(data.toString());
        if (frame.type === "error") onError(frame);
      }
      : () => {};
  }
  out("READY");
  await nextLine();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let lagMax = 0;
  if (closed) {
    for (let i = 0; i < n; i++) for (let w = 0; w < job.window && nextK[i] < perChat; w++) sendOne(i);
  } else {
    // Message m (0..total-1) is scheduled at t0 + m / rate, chat m % n.
    const interval = 1000 / job.rate;
    const start = t0 + 20;
    for (let m = 0; m < total; m++) sentAt[(m % n) * perChat + Math.floor(m / n)] = start + m * interval;
    let m = 0;
    const tick = () => {
      const now = performance.now();
      while (m < total && start + m * interval <= now) {
        lagMax = Math.max(lagMax, now - (start + m * interval));
        sendOne(m % n);
        m++;
      }
      if (m < total) setTimeout(tick, Math.max(0, start + m * interval - performance.now()));
    };
    setTimeout(tick, 20);
  }
  const timeout = sleep(job.timeout_s * 1000).then(() => "timeout");
  const how = await Promise.race([finished.then(() => "done"), timeout]);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const wall = (t1 - t0) / 1000;
  out("DONE", { wall_s: wall });
  const result = {
    expected: total,
    delivered,
    acked: chat ? acks : null,
    timed_out: how === "timeout",
    errors,
    first_errors: firstErrors,
    wall_s: Math.round(wall * 1000) / 1000,
    delivered_per_s: Math.round(delivered / wall),
    latency_ms: percentiles(latency.filter((v) => v > 0)),
    ack_latency_ms: chat ? percentiles(ackLatency) : null,
    send_lag_max_ms: closed ? null : Math.round(lagMax * 1000) / 1000,
    generator_cpu_s: (cpu.user + cpu.system) / 1e6,
    generator_cores: (cpu.user + cpu.system) / 1e6 / wall,
  };
  await closeAll(all);
  out("RESULT", result);
}

// ------------------------------------------------------------------ connect
async function connectPhase(count, hello) {
  const lat = new Float64Array(count);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const sockets = await limited(count, job.concurrency, async (i) => {
    const s = performance.now();
    const ws = await open(job.kind === "chat" ? `${job.url}/ws/visitor` : `${job.url}/ws/a/c${i}`);
    const h = hello(i);
    ws.send(JSON.stringify(h));
    const frame = await expect(ws, job.kind === "chat" ? "welcome" : "ack");
    ws.token = frame.token;
    ws.lastSeq = frame.last_seq;
    lat[i] = performance.now() - s;
    return ws;
  });
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const wall = (t1 - t0) / 1000;
  return {
    sockets,
    figures: {
      count,
      wall_s: Math.round(wall * 1000) / 1000,
      per_s: Math.round(count / wall),
      latency_ms: percentiles(lat),
      generator_cores: (cpu.user + cpu.system) / 1e6 / wall,
    },
  };
}

async function connect() {
  const chat = job.kind === "chat";
  out("READY");
  await nextLine();
  const first = await connectPhase(job.count, (i) => (chat
    ? { type: "hello", name: `v${i}` }
    : { type: "hello", client_msg_id: `h${i}` }));
  out("PHASE", { phase: "connect", ...first.figures });
  await nextLine(); // the server's memory with every socket idle was read
  const result = { connect: first.figures };
  if (job.resume) {
    const tokens = first.sockets.map((ws) => [ws.token, ws.lastSeq]);
    await closeAll(first.sockets);
    await sleep(500);
    out("PHASE", { phase: "closed" });
    await nextLine();
    const again = await connectPhase(job.count, (i) => (chat
      ? { type: "hello", token: tokens[i][0], last_seq: tokens[i][1] }
      : { type: "hello", client_msg_id: `h${i}` }));
    out("PHASE", { phase: "resume", ...again.figures });
    await nextLine();
    result.resume = again.figures;
    await closeAll(again.sockets);
  } else {
    await closeAll(first.sockets);
  }
  out("RESULT", result);
}

const main = job.mode === "traffic" ? traffic : connect;
main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
  },
);
