import type { ReactNode } from "react";

export const metadata = { title: "Scalekit full-stack auth (Next.js)" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <nav>
          <a href="/">Home</a> · <a href="/dashboard">Dashboard</a> ·{" "}
          <form action="/auth/logout" method="post" style={{ display: "inline" }}>
            <button>Log out</button>
          </form>
        </nav>
        {children}
      </body>
    </html>
  );
}
