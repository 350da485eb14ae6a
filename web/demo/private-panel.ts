// The demo page's private panel: paste a token (`pushctl token --user user1`),
// and watch that user's orders and balances live over the JWT `orders` topic
// of the gateway serving this page (WebSocket, Binance JSON). Resumes after
// the last event it showed when the socket drops.
interface Report { e: string; s?: string; S?: string; X?: string; x?: string; p?: string; q?: string; z?: string; L?: string; l?: string; a?: string; d?: string; seq?: number; B?: Array<{ a: string; f: string; l: string }> }

export const privateState = { state: 'logged out', events: 0, balances: {} as Record<string, { f: string; l: string }>, lastError: '' };

export function startPrivatePanel(root: HTMLElement): void {
  root.innerHTML = `
    <h3>Private: orders and balances</h3>
    <form id="pp-form"><input id="pp-token" type="password" placeholder="token (pushctl token --user user1)" size="48" autocomplete="off">
    <button id="pp-login">log in</button> <span id="pp-state" class="state">logged out</span></form>
    <table id="pp-balances"><thead><tr><th>asset</th><th>free</th><th>locked</th></tr></thead><tbody></tbody></table>
    <table id="pp-orders"><thead><tr><th>symbol</th><th>side</th><th>exec</th><th>status</th><th>price</th><th>qty</th><th>filled</th><th>fill</th></tr></thead><tbody></tbody></table>`;
  const $ = (id: string) => root.querySelector<HTMLElement>(`#${id}`)!;
  let ws: WebSocket | undefined;
  let lastSeq = 0;
  let token = '';
  let retry: number | undefined;
  const setState = (s: string) => {
    privateState.state = s;
    $('pp-state').textContent = s;
    $('pp-state').dataset.state = s === 'live' ? 'live' : 'idle';
  };
  const cell = (v: unknown) => { const td = document.createElement('td'); td.textContent = String(v ?? ''); return td; };
  const showBalances = (B: Report['B']) => {
    for (const b of B ?? []) privateState.balances[b.a] = { f: b.f, l: b.l };
    const body = $('pp-balances').querySelector('tbody')!;
    body.replaceChildren(...Object.entries(privateState.balances).map(([a, b]) => { const tr = document.createElement('tr'); tr.append(cell(a), cell(b.f), cell(b.l)); return tr; }));
  };
  const onEvent = (m: Report) => {
    if (typeof m.seq === 'number') lastSeq = m.seq;
    privateState.events++;
    if (m.e === 'executionReport') {
      const tr = document.createElement('tr');
      tr.append(cell(m.s), cell(m.S), cell(m.x), cell(m.X), cell(m.p), cell(m.q), cell(m.z), cell(m.x === 'TRADE' ? `${m.l} @ ${m.L}` : ''));
      const body = $('pp-orders').querySelector('tbody')!;
      body.prepend(tr);
      while (body.children.length > 20) body.lastElementChild!.remove();
    }
    if (m.B) showBalances(m.B);
    if (typeof m.seq === 'number' && privateState.events % 20 === 0) ws?.send(JSON.stringify({ method: 'ACK', params: [m.seq], id: null }));
  };
  const connect = () => {
    ws?.close();
    setState('connecting');
    const sock = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?token=${encodeURIComponent(token)}`);
    ws = sock;
    sock.onopen = () => sock.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['orders'], id: 1, ...(lastSeq > 0 ? { after: lastSeq } : {}) }));
    sock.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data)) as Report & { result?: unknown; error?: { msg: string } };
      if (m.error) {
        privateState.lastError = m.error.msg;
        setState(`refused: ${m.error.msg}`);
        return;
      }
      if ('result' in m) return setState('live');
      onEvent(m);
    };
    // A refused token closes before open (HTTP 401): said, not retried; a drop retries after the last event shown.
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      if (ev.code === 1006 && privateState.state === 'connecting') return setState('refused: check the token');
      if (ev.code === 4003) return setState('token expired: paste a new one');
      setState('reconnecting');
      retry = window.setTimeout(connect, 500 + Math.random() * 1500);
    };
  };
  $('pp-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token = ($('pp-token') as HTMLInputElement).value.trim();
    if (!token) return setState('paste a token first');
    clearTimeout(retry);
    lastSeq = 0;
    privateState.balances = {};
    connect();
  });
  (window as unknown as { privatePanel: typeof privateState }).privatePanel = privateState;
}
