// The inbox WebSocket (/ws/inbox/): reconnects with exponential backoff and full jitter, pings to notice a
// dead connection, and tells the page when it is online again so that it can catch up by seq.

const PING_EVERY_MS = 25000;
const SILENCE_LIMIT_MS = 60000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30000;

export class InboxSocket {
  constructor({path = "/ws/inbox/", onFrame, onOpen, onDown, onAuthLost}) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onDown = onDown;
    this.onAuthLost = onAuthLost;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.everOpened = false;
    this.stopped = false;
    this.nextRetryAt = 0;
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.abandon(4000, "offline"));
  }

  get open() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      const again = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.lastHeard = Date.now();
      this.startPing();
      this.onOpen && this.onOpen({reconnected: again});
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object" && frame.type !== "pong") this.onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.stopPing();
      this.ws = null;
      if (event.code === 4401) {
        this.stopped = true;
        this.onAuthLost && this.onAuthLost();
        return;
      }
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    if (this.stopped) return;
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2)); // "equal jitter": never a thundering herd
    this.attempt += 1;
    this.nextRetryAt = Date.now() + delay;
    this.onDown && this.onDown({retryInMs: delay, attempt: this.attempt});
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.open) return;
    if (this.ws && this.ws.readyState === WebSocket.CONNECTING) return;
    this.attempt = 0;
    this.connect();
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.open) return;
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        this.abandon(4000, "silent"); // a half-open connection: start over
        return;
      }
      this.send({type: "ping"});
    }, PING_EVERY_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Give up on the current connection now. Its close event waits for the closing handshake, which a dead or
   * offline network never completes (the browser may wait a minute), so the page hears "down" at once and the
   * late close event is ignored: it no longer belongs to `this.ws`.
   */
  abandon(code, reason) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.stopPing();
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
    this.scheduleRetry();
  }

  /** Test and debugging hook: drop the connection as a network failure would. */
  drop() {
    this.abandon(4000, "dropped");
  }
}
