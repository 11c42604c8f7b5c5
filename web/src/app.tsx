/// <reference lib="dom" />
/**
 * The mitmdeno web UI (Preact). The flow list is a server-side view: the browser holds only the rows it
 * shows and asks for others as it scrolls, so it stays smooth with any number of flows.
 */
import { render } from "preact";
import type { JSX } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, apiJson, runCommand, Updates } from "./api.ts";
import { autoView, ContentView, type ViewName, VIEWS } from "./contentviews.tsx";
import { geometry, ROW_H } from "./geometry.ts";

const updates = new Updates();

type Row = Record<string, any>;

function fmtSize(n: number | null): string {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n}b`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}kb`;
  return `${(n / 1024 / 1024).toFixed(1)}mb`;
}

function fmtDuration(s: number | null): string {
  if (s === null || s === undefined) return "...";
  const ms = s * 1000;
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(2)}s`;
}

function fmtTime(t: number): string {
  const d = new Date(t * 1000);
  return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

/** The resource type shown in the icon column (mitmweb's getResourceType). */
function icon(r: Row): JSX.Element {
  const ct = (r.contentType ?? "").toLowerCase();
  let t = "file";
  if (r.websocket) t = "ws";
  else if (r.status === 304) t = "304";
  else if (r.status >= 300 && r.status < 400) t = "redir";
  else if (ct.includes("html")) t = "html";
  else if (ct.includes("json")) t = "json";
  else if (ct.includes("javascript")) t = "js";
  else if (ct.includes("css")) t = "css";
  else if (ct.startsWith("image/")) t = "img";
  return <span class={`rtype rt-${t}`} title={t}>{t}</span>;
}

const COLUMNS: {
  key: string;
  title: string;
  sort?: string;
  render: (r: Row, i: number) => JSX.Element | string;
}[] = [
  {
    key: "tls",
    title: "",
    sort: "tls",
    render: (r) => (
      <span
        title={r.tls ? "TLS" : "plain"}
        class={r.tls ? "tls-on" : "tls-off"}
        style="display:block;height:100%"
      />
    ),
  },
  { key: "icon", title: "", sort: "type", render: (r) => icon(r) },
  { key: "method", title: "Method", sort: "method", render: (r) => r.method },
  { key: "host", title: "Host", sort: "host", render: (r) => r.host },
  {
    key: "path",
    title: "Path",
    sort: "path",
    render: (r) => (
      <span>
        {r.intercepted && <span class="badge warn" title="Intercepted: waiting to resume">paused</span>}
        {r.isReplay && <span class="badge" title="Replayed">replay</span>}
        {r.error && (
          <span class="badge errtxt" title={r.error}>
            {r.error === "Connection killed." ? "killed" : "error"}
          </span>
        )}
        {r.modified && <span class="badge" title="Modified">edited</span>} {r.path}
      </span>
    ),
  },
  {
    key: "status",
    title: "Status",
    sort: "status",
    render: (r) => r.status ? <span class={`s${String(r.status)[0]}`}>{r.status}</span> : "",
  },
  { key: "size", title: "Size", sort: "size", render: (r) => fmtSize((r.reqLen ?? 0) + (r.respLen ?? 0)) },
  { key: "time", title: "Time", sort: "time", render: (r) => fmtTime(r.timestamp) },
  { key: "duration", title: "Duration", sort: "duration", render: (r) => fmtDuration(r.duration) },
  {
    key: "marked",
    title: "Mark",
    sort: "marked",
    render: (r) => (
      <span title={r.comment}>
        {r.marked ? <span class="mark" title={r.marked}>●</span> : ""}
        {r.comment ? <span class="badge">note</span> : ""}
      </span>
    ),
  },
];

const HELP: [string, string][] = [
  ["j / ↓", "next flow"],
  ["k / ↑", "previous flow"],
  ["PageDown / Space, PageUp", "10 flows down / up"],
  ["Home / End", "first / last flow"],
  ["Enter", "open the selected flow"],
  ["Esc", "close the details / dialog"],
  ["← / → / Tab", "previous / next tab"],
  ["d / Delete", "delete the flow"],
  ["D", "duplicate the flow"],
  ["m", "mark / unmark"],
  ["r", "replay"],
  ["v", "revert changes"],
  ["a / A", "resume the flow / all intercepted flows"],
  ["x / X", "kill the flow / all flows"],
  ["z", "clear all flows"],
  ["e", "edit the request / response"],
  ["/", "focus the search filter"],
  ["?", "this help"],
];

const LEVELS = ["debug", "info", "alert", "warn", "error"] as const;

/** The event log, with mitmweb's level toggles (debug hidden until asked for). */
function EventLog({ events }: { events: Row[] }) {
  const [shown, setShown] = useStored("mitmdeno-event-levels", "info,alert,warn,error");
  const on = new Set(shown.split(","));
  const toggle = (l: string) => {
    if (on.has(l)) on.delete(l);
    else on.add(l);
    setShown([...on].join(","));
  };
  const ref = useRef<HTMLDivElement>(null);
  const visible = events.filter((e) => on.has(e.level));
  useEffect(() => {
    const el = ref.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [visible.length]);
  return (
    <div class="events" id="eventlog" ref={ref}>
      <div class="bar ev-levels">
        {LEVELS.map((l) => (
          <label key={l} class={`ev-${l}`}>
            <input type="checkbox" data-level={l} checked={on.has(l)} onChange={() => toggle(l)} /> {l}
          </label>
        ))}
      </div>
      {visible.map((e) => <div key={e.id} class={`ev ev-${e.level}`}>[{e.level}] {e.message}</div>)}
    </div>
  );
}

function useStored(key: string, init: string): [string, (v: string) => void] {
  const [v, setV] = useState(() => localStorage.getItem(key) ?? init);
  return [v, (x: string) => {
    localStorage.setItem(key, x);
    setV(x);
  }];
}

function FilterInput(
  { id, label, value, onChange, error, placeholder }: {
    id: string;
    label: string;
    value: string;
    onChange: (v: string) => void;
    error: string | null;
    placeholder: string;
  },
) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  return (
    <label class="filter">
      <input
        id={id}
        class={error ? "bad" : ""}
        placeholder={placeholder}
        value={text}
        title={label}
        onInput={(e) => setText((e.target as HTMLInputElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter") onChange(text);
          if (e.key === "Escape") (e.target as HTMLInputElement).blur();
          e.stopPropagation();
        }}
        onBlur={() => onChange(text)}
      />
      {error && <span class="ferr" data-error={id}>{error}</span>}
    </label>
  );
}

function App() {
  const [theme, setTheme] = useStored("theme", "system");
  const [filter, setFilter] = useStored("filter", "");
  const [highlight, setHighlight] = useStored("highlight", "");
  const [order, setOrder] = useState("time");
  const [reverse, setReverse] = useState(false);
  const [errors, setErrors] = useState<{ filterError: string | null; highlightError: string | null }>({
    filterError: null,
    highlightError: null,
  });
  const [interceptError, setInterceptError] = useState<string | null>(null);
  const [options, setOptions] = useState<Record<string, any>>({});
  const [total, setTotal] = useState(0);
  const [rows, setRows] = useState<Map<number, Row>>(new Map());
  const [selIndex, setSelIndex] = useState(-1);
  const [selId, setSelId] = useState<string | null>(null);
  const [modal, setModal] = useState<"" | "help" | "options">("");
  const [showEvents, setShowEvents] = useState(false);
  const [events, setEvents] = useState<Row[]>([]);
  const [connected, setConnected] = useState(false);
  const [tick, setTick] = useState(0);
  const listRef = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, height: 600 });

  useEffect(() => {
    const t = theme === "system"
      ? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light")
      : theme;
    document.documentElement.dataset.theme = t;
  }, [theme]);

  // fetch the rows on screen (and a margin) whenever the view or the scroll position changes
  const geo = geometry(total, scroll.height);
  const vtop = geo.virtualTop(scroll.top);
  const first = Math.max(0, Math.floor(vtop / ROW_H) - 20);
  const count = Math.ceil(scroll.height / ROW_H) + 40;
  const fetchRows = useCallback(async () => {
    const r = await updates.ask({ type: "rows", offset: first, limit: count });
    setTotal(r.total);
    const m = new Map<number, Row>();
    r.rows.forEach((row: Row, i: number) => m.set(r.offset + i, row));
    setRows(m);
  }, [first, count]);

  const setView = useCallback(async () => {
    const r = await updates.ask({ type: "view/set", filter, highlight, order, reverse });
    setErrors({ filterError: r.filterError, highlightError: r.highlightError });
    setRows(new Map());
    setTotal(r.total);
    setTick((t) => t + 1);
  }, [filter, highlight, order, reverse]);

  useEffect(() => {
    void setView();
  }, [setView]);
  useEffect(() => {
    void fetchRows();
  }, [fetchRows, tick]);

  useEffect(() => {
    setConnected(updates.connected);
    updates.onStatus = (c) => {
      setConnected(c);
      if (c) void setView();
    };
    updates.onMessage = (m) => {
      if (m.type === "view/changed") {
        setTotal(m.total);
        setTick((t) => t + 1);
      } else if (m.type === "events/add") setEvents((e) => [...e.slice(-999), m.payload]);
      else if (m.type === "events/reset") setEvents([]);
      else if (m.type === "options/update") setOptions((o) => ({ ...o, ...m.payload }));
    };
    apiJson("/options").then(setOptions);
    apiJson("/events").then(setEvents);
  }, [setView]);

  // keep the selection on its flow when rows move
  useEffect(() => {
    if (!selId) return;
    for (const [i, r] of rows) if (r.id === selId && i !== selIndex) setSelIndex(i);
  }, [rows]);

  const selectIndex = async (i: number) => {
    if (total === 0) return;
    i = Math.max(0, Math.min(total - 1, i));
    setSelIndex(i);
    const el = listRef.current;
    if (el) {
      const g = geometry(total, el.clientHeight);
      const top = g.virtualTop(el.scrollTop);
      if (i * ROW_H < top) el.scrollTop = g.scrollTopFor(i * ROW_H);
      else if ((i + 1) * ROW_H > top + el.clientHeight - ROW_H) {
        el.scrollTop = g.scrollTopFor((i + 2) * ROW_H - el.clientHeight);
      }
    }
    const known = rows.get(i);
    if (known) setSelId(known.id);
    else {
      const r = await updates.ask({ type: "rows", offset: i, limit: 1 });
      if (r.rows[0]) setSelId(r.rows[0].id);
    }
  };

  const selected = selId;
  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      alert((e as Error).message);
    }
  };
  const actions = {
    remove: () => selected && act(() => api(`/flows/${selected}`, { method: "DELETE" })),
    duplicate: () =>
      selected && act(async () => {
        const id = await (await api(`/flows/${selected}/duplicate`, { method: "POST" })).text();
        setSelId(id);
      }),
    replay: () => selected && act(() => api(`/flows/${selected}/replay`, { method: "POST" })),
    revert: () => selected && act(() => api(`/flows/${selected}/revert`, { method: "POST" })),
    resume: () => selected && act(() => api(`/flows/${selected}/resume`, { method: "POST" })),
    kill: () => selected && act(() => api(`/flows/${selected}/kill`, { method: "POST" })),
    mark: () => {
      const r = [...rows.values()].find((x) => x.id === selected);
      if (selected) {
        act(() => api(`/flows/${selected}`, { method: "PUT", body: JSON.stringify({ marked: !r?.marked }) }));
      }
    },
    resumeAll: () => act(() => api("/flows/resume", { method: "POST" })),
    killAll: () => act(() => api("/flows/kill", { method: "POST" })),
    clear: () =>
      act(async () => {
        await api("/clear", { method: "POST" });
        setSelId(null);
        setSelIndex(-1);
      }),
  };

  const setIntercept = async (v: string) => {
    try {
      await api("/options", { method: "PUT", body: JSON.stringify({ intercept: v || null }) });
      setInterceptError(null);
    } catch (e) {
      setInterceptError((e as Error).message);
    }
  };

  const [tabCmd, setTabCmd] = useState<{ dir: number; n: number }>({ dir: 0, n: 0 });
  const [editCmd, setEditCmd] = useState(0);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target as HTMLElement;
      if (e.key === "Escape" && modal) {
        setModal("");
        return;
      }
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
      const k = e.key;
      const handled = true;
      switch (k) {
        case "j":
        case "ArrowDown":
          selectIndex(selIndex + 1);
          break;
        case "k":
        case "ArrowUp":
          selectIndex(selIndex - 1);
          break;
        case " ":
        case "PageDown":
          selectIndex(selIndex + 10);
          break;
        case "PageUp":
          selectIndex(selIndex - 10);
          break;
        case "Home":
          selectIndex(0);
          break;
        case "End":
          selectIndex(total - 1);
          break;
        case "Enter":
          if (selIndex < 0) selectIndex(0);
          break;
        case "Escape":
          if (modal) setModal("");
          else {
            setSelId(null);
            setSelIndex(-1);
          }
          break;
        case "ArrowLeft":
          setTabCmd((c) => ({ dir: -1, n: c.n + 1 }));
          break;
        case "ArrowRight":
        case "Tab":
          setTabCmd((c) => ({ dir: 1, n: c.n + 1 }));
          break;
        case "d":
        case "Delete":
          actions.remove();
          break;
        case "D":
          actions.duplicate();
          break;
        case "m":
          actions.mark();
          break;
        case "r":
          actions.replay();
          break;
        case "v":
          actions.revert();
          break;
        case "a":
          actions.resume();
          break;
        case "A":
          actions.resumeAll();
          break;
        case "x":
          actions.kill();
          break;
        case "X":
          actions.killAll();
          break;
        case "z":
          actions.clear();
          break;
        case "e":
          setEditCmd((n) => n + 1);
          break;
        case "/":
          document.getElementById("search")?.focus();
          break;
        case "?":
          setModal(modal === "help" ? "" : "help");
          break;
        default:
          return;
      }
      if (handled) e.preventDefault();
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  });

  const fileInput = useRef<HTMLInputElement>(null);
  const upload = async (file: File) => {
    const fd = new FormData();
    fd.append("file", file);
    await act(() => api("/flows/dump", { method: "POST", body: fd }));
  };
  const q = filter ? `?filter=${encodeURIComponent(filter)}` : "";

  const wanted: string[] = options.web_columns?.value ?? COLUMNS.map((c) => c.key);
  const columns = COLUMNS.filter((c) =>
    wanted.includes(c.key) || (c.key === "marked" && wanted.includes("comment"))
  );
  const visible: JSX.Element[] = [];
  for (let i = first; i < Math.min(total, first + count); i++) {
    const r = rows.get(i);
    if (!r) continue;
    visible.push(
      <div
        key={r.id}
        class={`row${r.id === selId ? " sel" : ""}${r.highlighted ? " hl" : ""}`}
        style={`position:absolute;top:${geo.rowTop(i, scroll.top)}px;left:0;right:0`}
        data-id={r.id}
        onClick={() => {
          setSelIndex(i);
          setSelId(r.id);
        }}
      >
        {columns.map((c) => <div key={c.key} class={`cell c-${c.key}`}>{c.render(r, i)}</div>)}
      </div>,
    );
  }

  return (
    <>
      <header>
        <span class="brand">mitmdeno</span>
        <FilterInput
          id="search"
          label="Search (view filter)"
          placeholder="Search: ~d example.com & ~s"
          value={filter}
          onChange={setFilter}
          error={errors.filterError}
        />
        <FilterInput
          id="highlight"
          label="Highlight"
          placeholder="Highlight: ~c 404"
          value={highlight}
          onChange={setHighlight}
          error={errors.highlightError}
        />
        <FilterInput
          id="intercept"
          label="Intercept"
          placeholder="Intercept: ~q & ~d api"
          value={options.intercept?.value ?? ""}
          onChange={setIntercept}
          error={interceptError}
        />
        <button
          type="button"
          id="resume-all"
          title="Resume all intercepted flows (A)"
          onClick={actions.resumeAll}
        >
          ▶ Resume all
        </button>
        <button
          type="button"
          id="open"
          title="Open a flow file or HAR"
          onClick={() => fileInput.current?.click()}
        >
          Open…
        </button>
        <input
          ref={fileInput}
          type="file"
          id="file"
          style="display:none"
          onChange={(e) => {
            const f = (e.target as HTMLInputElement).files?.[0];
            if (f) upload(f);
            (e.target as HTMLInputElement).value = "";
          }}
        />
        <a href={`/flows/dump${q}`} download="flows.mitm">
          <button type="button" id="save">Save</button>
        </a>
        <a href={`/flows/har${q}`} download="flows.har">
          <button type="button" id="save-har">HAR</button>
        </a>
        <button type="button" id="clear" title="Clear all flows (z)" onClick={actions.clear}>Clear</button>
        <button type="button" id="options" onClick={() => setModal("options")}>Options</button>
        <button type="button" id="events" onClick={() => setShowEvents(!showEvents)}>Events</button>
        <select id="theme" value={theme} onChange={(e) => setTheme((e.target as HTMLSelectElement).value)}>
          <option value="system">System theme</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
        <button type="button" id="help" onClick={() => setModal("help")}>?</button>
      </header>
      <main>
        <div class="thead">
          {columns.map((c) => (
            <div
              key={c.key}
              class={`cell c-${c.key}`}
              data-sort={c.sort}
              onClick={() => {
                if (!c.sort) return;
                if (order === c.sort) setReverse(!reverse);
                else {
                  setOrder(c.sort);
                  setReverse(false);
                }
              }}
            >
              {c.title}
              {order === c.sort && c.key !== "tls" ? (reverse ? " ▼" : " ▲") : ""}
            </div>
          ))}
        </div>
        <div
          class="list"
          ref={listRef}
          onScroll={(e) => {
            const el = e.target as HTMLDivElement;
            setScroll({ top: el.scrollTop, height: el.clientHeight });
          }}
        >
          <div style={`height:${geo.spacer}px;position:relative`}>{visible}</div>
        </div>
        {selected && (
          <Detail
            key={selected}
            id={selected}
            tick={tick}
            tabCmd={tabCmd}
            editCmd={editCmd}
            actions={actions}
            onClose={() => setSelId(null)}
          />
        )}
        {showEvents && <EventLog events={events} />}
      </main>
      <div class="status-bar">
        <span id="flow-count">{total} flows</span>
        <span>{connected ? "connected" : "disconnected"}</span>
        {options.intercept_active?.value && <span>intercepting: {options.intercept?.value}</span>}
        <span>
          press <kbd>?</kbd> for shortcuts
        </span>
      </div>
      {modal === "help" && (
        <Modal onClose={() => setModal("")}>
          <h3>Keyboard shortcuts</h3>
          <table class="kv" id="help-table">
            <tbody>
              {HELP.map(([k, v]) => (
                <tr key={k}>
                  <td>
                    <kbd>{k}</kbd>
                  </td>
                  <td>{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Filter expressions</h3>
          <FilterHelp />
        </Modal>
      )}
      {modal === "options" && (
        <Modal onClose={() => setModal("")}>
          <OptionsEditor options={options} />
        </Modal>
      )}
    </>
  );
}

function Modal({ children, onClose }: { children: preact.ComponentChildren; onClose: () => void }) {
  return (
    <div class="modal" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div>
        <div style="text-align:right">
          <button type="button" onClick={onClose}>Close</button>
        </div>
        {children}
      </div>
    </div>
  );
}

function FilterHelp() {
  const [help, setHelp] = useState<[string, string][]>([]);
  useEffect(() => {
    apiJson("/filter-help").then((h) => setHelp(h.commands));
  }, []);
  return (
    <table class="kv">
      <tbody>
        {help.map(([k, v]) => (
          <tr key={k}>
            <td>{k}</td>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function OptionsEditor({ options }: { options: Record<string, any> }) {
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [q, setQ] = useState("");
  const put = async (name: string, value: unknown) => {
    try {
      await api("/options", { method: "PUT", body: JSON.stringify({ [name]: value }) });
      setErrors((e) => ({ ...e, [name]: "" }));
    } catch (e) {
      setErrors((x) => ({ ...x, [name]: (e as Error).message }));
    }
  };
  const names = Object.keys(options).filter((n) => n.includes(q));
  return (
    <div id="options-editor">
      <h3>Options</h3>
      <input
        placeholder="search options"
        value={q}
        onInput={(e) => setQ((e.target as HTMLInputElement).value)}
      />
      {names.map((n) => {
        const o = options[n];
        let input: JSX.Element;
        if (o.type === "bool") {
          input = (
            <input
              type="checkbox"
              name={n}
              checked={o.value}
              onChange={(e) => put(n, (e.target as HTMLInputElement).checked)}
            />
          );
        } else if (o.choices) {
          input = (
            <select
              name={n}
              value={o.value}
              onChange={(e) => put(n, (e.target as HTMLSelectElement).value)}
            >
              {o.choices.map((c: string) => <option key={c}>{c}</option>)}
            </select>
          );
        } else if (o.type === "sequence of str") {
          input = (
            <textarea
              name={n}
              rows={Math.max(1, o.value.length)}
              value={o.value.join("\n")}
              onBlur={(e) =>
                put(n, (e.target as HTMLTextAreaElement).value.split("\n").filter((x) => x !== ""))}
            />
          );
        } else {
          const isInt = o.type.includes("int");
          input = (
            <input
              name={n}
              value={o.value ?? ""}
              onKeyDown={(e) => e.key === "Enter" && (e.target as HTMLInputElement).blur()}
              onBlur={(e) => {
                const v = (e.target as HTMLInputElement).value;
                if (v === String(o.value ?? "")) return;
                if (v === "" && o.type.startsWith("optional")) return put(n, null);
                if (isInt) {
                  if (!/^-?\d+$/.test(v)) {
                    return setErrors((x) => ({
                      ...x,
                      [n]: `Option "${n}": expected an integer, got "${v}"`,
                    }));
                  }
                  return put(n, Number(v));
                }
                put(n, v);
              }}
            />
          );
        }
        return (
          <div class="opt" key={n} data-option={n}>
            <div>
              <b>{n}</b>
              <div class="help">
                {o.type}
                {JSON.stringify(o.value) !== JSON.stringify(o.default) ? " (changed)" : ""}
              </div>
            </div>
            <div>
              {input}
              <div class="help">{o.help}</div>
              {errors[n] && <div class="oerr">{errors[n]}</div>}
            </div>
          </div>
        );
      })}
    </div>
  );
}

const TABS = ["request", "response", "messages", "connection", "timing", "error", "comment"] as const;
type Tab = typeof TABS[number];

function Detail(
  { id, tick, tabCmd, editCmd, actions, onClose }: {
    id: string;
    tick: number;
    tabCmd: { dir: number; n: number };
    editCmd: number;
    actions: Record<string, () => unknown>;
    onClose: () => void;
  },
) {
  const [flow, setFlow] = useState<Row | null>(null);
  const [tab, setTab] = useState<Tab>("request");
  const [error, setError] = useState("");
  const [exported, setExported] = useState<{ fmt: string; text: string } | null>(null);
  useEffect(() => {
    apiJson(`/flows/${id}`).then(setFlow, (e) => setError(e.message));
  }, [id, tick]);
  const tabs = useMemo(
    () =>
      TABS.filter((t) =>
        t === "request" || t === "connection" || t === "timing" || t === "comment" ||
        (t === "response" && flow?.response) || (t === "error" && flow?.error) ||
        (t === "messages" && flow?.websocket)
      ),
    [flow],
  );
  useEffect(() => {
    if (!tabCmd.n) return;
    const i = tabs.indexOf(tab);
    setTab(tabs[(i + tabCmd.dir + tabs.length) % tabs.length]);
  }, [tabCmd.n]);
  if (!flow) {
    return (
      <div class="detail">
        <div class="pane">{error || "loading…"}</div>
      </div>
    );
  }
  const exportAs = async (fmt: string) => {
    try {
      const text = await runCommand("export", fmt, `@${id}`);
      setExported({ fmt, text });
    } catch (e) {
      alert((e as Error).message);
    }
  };
  return (
    <div class="detail" id="detail">
      <div class="tabs">
        {tabs.map((t) => (
          <button
            type="button"
            key={t}
            class={t === tab ? "on" : ""}
            data-tab={t}
            onClick={() => setTab(t)}
          >
            {t[0].toUpperCase() + t.slice(1)}
          </button>
        ))}
        <div class="actions">
          {flow.intercepted && <button type="button" id="resume" onClick={actions.resume}>▶ Resume</button>}
          <button type="button" id="replay" onClick={actions.replay}>Replay</button>
          <button type="button" id="duplicate" onClick={actions.duplicate}>Duplicate</button>
          {flow.modified && <button type="button" id="revert" onClick={actions.revert}>Revert</button>}
          <button type="button" id="mark" onClick={actions.mark}>{flow.marked ? "Unmark" : "Mark"}</button>
          <button type="button" id="kill" onClick={actions.kill}>Kill</button>
          <button type="button" id="delete" onClick={actions.remove}>Delete</button>
          <select id="export" value="" onChange={(e) => exportAs((e.target as HTMLSelectElement).value)}>
            <option value="">Export…</option>
            <option value="curl">curl</option>
            <option value="httpie">httpie</option>
            <option value="raw">raw</option>
            <option value="har">HAR</option>
          </select>
          <button type="button" onClick={onClose}>✕</button>
        </div>
      </div>
      <div class="pane">
        {exported && (
          <div>
            <div class="bar">
              <b>Export as {exported.fmt}</b>
              <button type="button" onClick={() => navigator.clipboard?.writeText(exported.text)}>
                Copy
              </button>
              <button type="button" onClick={() => setExported(null)}>Close</button>
            </div>
            <pre id="exported">{exported.text}</pre>
          </div>
        )}
        {tab === "request" && <Message flow={flow} side="request" editCmd={editCmd} />}
        {tab === "response" && flow.response && <Message flow={flow} side="response" editCmd={editCmd} />}
        {tab === "messages" && <pre>{JSON.stringify(flow.websocket, null, 2)}</pre>}
        {tab === "connection" && <Connection flow={flow} />}
        {tab === "timing" && <Timing flow={flow} />}
        {tab === "error" && flow.error && (
          <div>
            <div class="errtxt">{flow.error.msg}</div>
            <div class="muted">{new Date(flow.error.timestamp * 1000).toISOString()}</div>
          </div>
        )}
        {tab === "comment" && <CommentTab flow={flow} />}
      </div>
    </div>
  );
}

function Message({ flow, side, editCmd }: { flow: Row; side: "request" | "response"; editCmd: number }) {
  const m = flow[side];
  const [view, setView] = useState<ViewName | "auto">("auto");
  const [data, setData] = useState<Uint8Array | null>(null);
  const [editing, setEditing] = useState(false);
  const [err, setErr] = useState("");
  useEffect(() => {
    if (editCmd) setEditing(true);
  }, [editCmd]);
  useEffect(() => {
    setData(null);
    if (m.contentLength === null) return;
    fetch(`/flows/${flow.id}/${side}/content.data`, { credentials: "same-origin" })
      .then((r) => r.ok ? r.arrayBuffer() : r.text().then((t) => Promise.reject(new Error(t))))
      .then((b) => setData(new Uint8Array(b)), (e) => setErr(`cannot load the body: ${e.message}`));
  }, [flow.id, m.contentHash]);
  const header = (n: string) =>
    (m.headers as [string, string][]).find(([k]) => k.toLowerCase() === n)?.[1] ?? "";
  const ct = header("content-type");
  const url = `${flow.request.scheme}://${flow.request.pretty_host}${
    flow.request.port === (flow.request.scheme === "https" ? 443 : 80) ? "" : ":" + flow.request.port
  }${flow.request.path}`;
  const query: [string, string][] = [...new URL(url).searchParams];
  const chosen: ViewName = view === "auto" && data
    ? autoView(ct, data, side === "request")
    : view as ViewName;
  if (editing) return <Editor flow={flow} side={side} body={data} onDone={() => setEditing(false)} />;
  return (
    <div data-message={side}>
      <div class="first">
        {side === "request"
          ? `${flow.request.method} ${url} ${flow.request.http_version}`
          : `${m.http_version} ${m.status_code} ${m.reason}`}
      </div>
      <table class="kv headers">
        <tbody>
          {(m.headers as [string, string][]).map(([k, v], i) => (
            <tr key={i}>
              <td>{k}:</td>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="bar">
        <label>
          View:{" "}
          <select
            id={`view-${side}`}
            value={view}
            onChange={(e) => setView((e.target as HTMLSelectElement).value as ViewName)}
          >
            {VIEWS.map((v) => (
              <option key={v} value={v}>
                {v === "auto" && data ? `auto (${autoView(ct, data, side === "request")})` : v}
              </option>
            ))}
          </select>
        </label>
        <span class="muted">
          {m.contentLength === null ? "body not stored (streamed)" : `${m.contentLength} bytes`}
        </span>
        <a href={`/flows/${flow.id}/${side}/content.data`} download>
          <button type="button">Download</button>
        </a>
        <button type="button" id={`edit-${side}`} onClick={() => setEditing(true)}>Edit</button>
        {err && <span class="errtxt">{err}</span>}
      </div>
      {data && (
        <div class="content" data-view={chosen}>
          <ContentView view={chosen} data={data} contentType={ct} query={query} />
        </div>
      )}
    </div>
  );
}

function Editor(
  { flow, side, body, onDone }: {
    flow: Row;
    side: "request" | "response";
    body: Uint8Array | null;
    onDone: () => void;
  },
) {
  const m = flow[side];
  const q = flow.request;
  const [first, setFirst] = useState(side === "request" ? q.method : String(m.status_code));
  const [second, setSecond] = useState(
    side === "request" ? `${q.scheme}://${q.host}:${q.port}${q.path}` : m.reason,
  );
  const [headers, setHeaders] = useState(
    (m.headers as [string, string][]).map(([k, v]) => `${k}: ${v}`).join("\n"),
  );
  const [content, setContent] = useState(body ? new TextDecoder().decode(body) : "");
  const [err, setErr] = useState("");
  const save = async () => {
    const hs = headers.split("\n").filter((l) => l.trim()).map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()];
    });
    if (hs.some(([k]) => !k)) return setErr("every header line needs a name: `Name: value`");
    const upd: Record<string, unknown> = side === "request"
      ? { method: first, url: second, headers: hs, content }
      : { code: Number(first), reason: second, headers: hs, content };
    try {
      await api(`/flows/${flow.id}`, { method: "PUT", body: JSON.stringify({ [side]: upd }) });
      onDone();
    } catch (e) {
      setErr((e as Error).message);
    }
  };
  return (
    <div id={`editor-${side}`}>
      <div class="bar">
        <input
          name="first"
          value={first}
          style="width:90px"
          onInput={(e) => setFirst((e.target as HTMLInputElement).value)}
        />
        <input
          name="second"
          value={second}
          style="flex:1"
          onInput={(e) => setSecond((e.target as HTMLInputElement).value)}
        />
      </div>
      <div class="muted">Headers (one `Name: value` a line)</div>
      <textarea
        name="headers"
        rows={6}
        value={headers}
        onInput={(e) => setHeaders((e.target as HTMLTextAreaElement).value)}
      />
      <div class="muted">Body</div>
      <textarea
        name="content"
        rows={8}
        value={content}
        onInput={(e) => setContent((e.target as HTMLTextAreaElement).value)}
      />
      <div class="bar">
        <button type="button" id="save-edit" onClick={save}>Save</button>
        <button type="button" onClick={onDone}>Cancel</button>
        {err && <span class="errtxt" id="edit-error">{err}</span>}
      </div>
    </div>
  );
}

function Connection({ flow }: { flow: Row }) {
  const c = flow.client_conn;
  const s = flow.server_conn;
  const row = (k: string, v: unknown) =>
    v === null || v === undefined || v === "" ? null : (
      <tr>
        <td>{k}</td>
        <td>{Array.isArray(v) ? v.join(":") : String(v)}</td>
      </tr>
    );
  return (
    <div>
      <h4>Client connection</h4>
      <table class="kv">
        <tbody>
          {row("Address", c.peername)}
          {row("Proxy address", c.sockname)}
          {row("TLS", c.tls_established ? "yes" : "no")}
          {row("TLS version", c.tls_version)}
          {row("SNI", c.sni)}
          {row("ALPN", c.alpn)}
          {row("Cipher", c.cipher)}
        </tbody>
      </table>
      <h4>Server connection</h4>
      <table class="kv">
        <tbody>
          {row("Address", s.address)}
          {row("Resolved address", s.peername)}
          {row("Source address", s.sockname)}
          {row("TLS", s.tls_established ? "yes" : "no")}
          {row("TLS version", s.tls_version)}
          {row("SNI", s.sni)}
          {row("ALPN", s.alpn)}
          {row("Cipher", s.cipher)}
        </tbody>
      </table>
    </div>
  );
}

function Timing({ flow }: { flow: Row }) {
  const c = flow.client_conn, s = flow.server_conn, q = flow.request, r = flow.response;
  const events: [string, number | null | undefined][] = [
    ["Client connected", c.timestamp_start],
    ["Client TLS established", c.timestamp_tls_setup],
    ["Server connected", s.timestamp_tcp_setup ?? s.timestamp_start],
    ["Server TLS established", s.timestamp_tls_setup],
    ["Request started", q.timestamp_start],
    ["Request complete", q.timestamp_end],
    ["Response started", r?.timestamp_start],
    ["Response complete", r?.timestamp_end],
    ["Client disconnected", c.timestamp_end],
    ["Server disconnected", s.timestamp_end],
  ];
  const known = events.filter(([, t]) => typeof t === "number") as [string, number][];
  const t0 = Math.min(...known.map(([, t]) => t));
  const t1 = Math.max(...known.map(([, t]) => t));
  const span = Math.max(t1 - t0, 1e-6);
  return (
    <div id="timing">
      <table class="kv" style="width:100%">
        <tbody>
          {known.sort((a, b) => a[1] - b[1]).map(([k, t]) => (
            <tr key={k}>
              <td>{k}</td>
              <td style="width:90px">+{((t - t0) * 1000).toFixed(1)}ms</td>
              <td style="width:60%">
                <div class="waterfall">
                  <div style={`left:${((t - t0) / span) * 100}%`} />
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function CommentTab({ flow }: { flow: Row }) {
  const [text, setText] = useState(flow.comment);
  return (
    <div>
      <textarea
        id="comment"
        rows={4}
        value={text}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
      />
      <div class="bar">
        <button
          type="button"
          id="save-comment"
          onClick={() => api(`/flows/${flow.id}`, { method: "PUT", body: JSON.stringify({ comment: text }) })}
        >
          Save comment
        </button>
      </div>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
