"use client";
// React bindings for the app-wide Realtime: no hook here ever creates a socket of its own.
import { useEffect, useRef, useSyncExternalStore } from "react";
import { type AdminEvent, type ConnState, type Realtime, currentRealtime, onRealtimeReady, realtime } from "./api";

export function useRealtime(): Realtime | null {
  useEffect(() => void realtime(), []);
  return useSyncExternalStore(onRealtimeReady, currentRealtime, () => null);
}

const noop = () => () => {};

export function useConnection(): ConnState {
  const rt = useRealtime();
  return useSyncExternalStore(
    rt ? rt.subscribe : noop,
    () => rt?.state ?? "connecting",
    () => "connecting" as ConnState,
  );
}

/** Calls `onEvent` for every `admin_event`, and `onConnect` on every (re)connect to catch up. */
export function useAdminEvents(onEvent: (event: AdminEvent) => void, onConnect?: () => void): void {
  const rt = useRealtime();
  const handlers = useRef({ onEvent, onConnect });
  handlers.current = { onEvent, onConnect };
  useEffect(() => {
    if (!rt) return;
    const event = (e: AdminEvent) => handlers.current.onEvent(e);
    // Events sent while disconnected are gone: the page refetches on every (re)connect.
    const connect = () => handlers.current.onConnect?.();
    rt.admin.on("admin_event", event);
    rt.admin.on("connect", connect);
    return () => {
      rt.admin.off("admin_event", event);
      rt.admin.off("connect", connect);
    };
  }, [rt]);
}

/** Re-run `fn` every `ms` while mounted (and once at once). */
export function usePoll(fn: () => void, ms: number): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    ref.current();
    const timer = setInterval(() => ref.current(), ms);
    return () => clearInterval(timer);
  }, [ms]);
}
