"use client";
// Login: paste a token (or open the `?token=` URL Beacon prints at start-up); kept in this tab's sessionStorage.
import { useEffect, useState } from "react";
import { BASE_PATH, authToken, setAuthToken } from "@/lib/api";

export default function LoginPage() {
  const [token, setToken] = useState("");
  const [reason, setReason] = useState("");

  useEffect(() => {
    const params = new URLSearchParams(window.location.search);
    setReason(params.get("reason") ?? "");
    if (params.get("token") && authToken()) done();
  }, []);

  function done() {
    const next = new URLSearchParams(window.location.search).get("next") ?? "";
    // Only a path on this site: a login link must not send the token's holder elsewhere.
    window.location.assign(next.startsWith(`${BASE_PATH}/`) && !next.startsWith("//") ? next : `${BASE_PATH}/`);
  }

  return (
    <section className="login">
      <h1>Log in</h1>
      <p>
        Beacon prints a login URL when it starts (<code>…/ui/?token=…</code>); the admin token is also in the token
        file beside its store. Any configured token works; its role decides what you may do.
      </p>
      {reason && <p role="alert">{reason}</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setAuthToken(token.trim() || null);
          done();
        }}
      >
        <label>
          Token <input type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
        </label>
        <button type="submit">Log in</button>
      </form>
    </section>
  );
}
