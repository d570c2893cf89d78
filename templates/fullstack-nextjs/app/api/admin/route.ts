import { NextResponse } from "next/server";
import { currentUser } from "@/lib/scalekit";

export async function GET() {
  const user = await currentUser();
  if (!user) return NextResponse.json({ error: "unauthorized" }, { status: 401, headers: { "WWW-Authenticate": "Bearer" } });
  if (!user.permissions.includes("users:write")) return NextResponse.json({ error: "forbidden", missing: "users:write" }, { status: 403 });
  return NextResponse.json({ ok: true });
}
