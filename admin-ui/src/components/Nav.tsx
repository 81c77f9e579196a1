"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { ConnectionBadge } from "./Badges";

const LINKS = [
  { href: "/", label: "Runs" },
  { href: "/approvals/", label: "Waiting for you" },
  { href: "/start/", label: "Start a run" },
  { href: "/health/", label: "Health" },
];

export function Nav() {
  const path = usePathname();
  return (
    <header className="top">
      <Link href="/" className="brand">
        Beacon
      </Link>
      <nav aria-label="Main">
        {LINKS.map(({ href, label }) => (
          <Link key={href} href={href} aria-current={path === href || (href === "/" && path === "/run/") ? "page" : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      <ConnectionBadge />
    </header>
  );
}
