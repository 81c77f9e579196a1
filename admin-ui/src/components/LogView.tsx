"use client";
// A virtualized log: fixed-height rows, only the visible ones in the DOM; follows the tail until the
// user scrolls up, then offers a jump back. Text is rendered as text (React escapes it), never HTML,
// one row per line: control characters and newlines show escaped; a long or multi-line one opens in full.
import { useDeferredValue, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import type { LogLine } from "@/lib/api";
import type { LogFeed } from "@/lib/logfeed";
import { visible, visibleLines } from "@/lib/format";

const ROW = 20;
const OVERSCAN = 20;
const LONG = 200; // characters past which a row offers the line in full
const RANK: Record<string, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

/** The feed's lines passing the filters, extended incrementally as lines arrive. */
function useFiltered(feed: LogFeed | null, minLevel: string, search: string): LogLine[] {
  const cache = useRef({ key: "", feed: null as LogFeed | null, upto: 0, out: [] as LogLine[] });
  const version = feed?.version ?? 0;
  return useMemo(() => {
    if (!feed) return [];
    const rank = RANK[minLevel] ?? 0;
    const needle = search.trim().toLowerCase();
    if (!rank && !needle) return feed.lines;
    const key = `${minLevel}\n${needle}`;
    let c = cache.current;
    if (c.key !== key || c.feed !== feed) c = cache.current = { key, feed, upto: 0, out: [] };
    for (; c.upto < feed.lines.length; c.upto++) {
      const line = feed.lines[c.upto];
      if ((RANK[line.level] ?? 0) >= rank && (!needle || line.text.toLowerCase().includes(needle))) c.out.push(line);
    }
    return c.out;
    // `version` changes whenever the feed's arrays grew in place.
  }, [feed, version, minLevel, search]);
}

export function LogView({ feed }: { feed: LogFeed | null }) {
  const [minLevel, setMinLevel] = useState("");
  const [searchInput, setSearchInput] = useState("");
  const search = useDeferredValue(searchInput);
  const lines = useFiltered(feed, minLevel, search);
  const total = lines.length;

  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 480 });
  const [follow, setFollow] = useState(true);
  const pausedAt = useRef(0);
  const [opened, setOpened] = useState<LogLine | null>(null);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    setView({ top: el.scrollTop, height: el.clientHeight });
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < ROW;
    if (!atBottom && follow) pausedAt.current = total;
    setFollow(atBottom);
  };

  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [total, follow]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setView({ top: el.scrollTop, height: el.clientHeight }));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const first = Math.max(0, Math.floor(view.top / ROW) - OVERSCAN);
  const last = Math.min(total, Math.ceil((view.top + view.height) / ROW) + OVERSCAN);
  const rows = [];
  for (let i = first; i < last; i++) {
    const line = lines[i];
    const extra = line.text.split("\n").length - 1;
    rows.push(
      <div key={line.seq} className={`line lv-${line.level}`} style={{ top: i * ROW }} data-seq={line.seq} data-index={i}>
        <span className="seq">{line.seq}</span>
        <span className="ts">{line.timestamp.slice(11, 23)}</span>
        <span className="lvl">{line.level}</span>
        {(extra > 0 || line.text.length > LONG) && (
          <button className="more" onClick={() => setOpened(line)} aria-label={`Show line ${line.seq} in full`}>
            {extra > 0 ? `+${extra} line${extra > 1 ? "s" : ""}` : "full"}
          </button>
        )}
        <span className="msg">{visible(line.text)}</span>
      </div>,
    );
  }
  const held = feed?.lines.length ?? 0;
  const unseen = follow ? 0 : Math.max(0, total - pausedAt.current);

  return (
    <section className="logview" aria-label="Live log">
      <div className="toolbar">
        <label>
          Level{" "}
          <select value={minLevel} onChange={(e) => setMinLevel(e.target.value)}>
            <option value="">all</option>
            <option value="INFO">info and above</option>
            <option value="WARNING">warnings and errors</option>
            <option value="ERROR">errors only</option>
          </select>
        </label>
        <label className="grow">
          Search{" "}
          <input type="search" value={searchInput} onChange={(e) => setSearchInput(e.target.value)} placeholder="text in line" />
        </label>
        <span className="muted" data-testid="log-count" aria-live="off">
          {total === held ? `${held} lines` : `${total} of ${held} lines`} · last seq {feed?.lastSeq ?? 0} · UTC
        </span>
      </div>
      {feed?.error && <p className="msg-error" role="status">{feed.error}</p>}
      <div className="logwrap">
        <div ref={box} className="log" tabIndex={0} onScroll={onScroll} role="region" aria-label="Log lines, newest last">
          <div className="logspace" style={{ height: total * ROW }}>
            {rows}
          </div>
          {total === 0 && <p className="muted empty">{held ? "No line matches the filter." : "No log lines yet."}</p>}
        </div>
        {!follow && (
          <button className="jump" onClick={() => setFollow(true)}>
            {unseen ? `↓ ${unseen} new — follow` : "↓ Follow the log"}
          </button>
        )}
      </div>
      {opened && (
        <div className="logdetail" role="region" aria-label={`Full text of log line ${opened.seq}`}>
          <div className="logdetail-head">
            <span>
              seq {opened.seq} · {opened.level} · {opened.timestamp}
            </span>
            <button onClick={() => setOpened(null)}>Close</button>
          </div>
          <pre>{visibleLines(opened.text)}</pre>
        </div>
      )}
    </section>
  );
}
