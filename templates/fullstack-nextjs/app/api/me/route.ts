import { NextResponse } from "next/server";
import { currentUser } from "@/lib/scalekit";

export async function GET() {
  const user = await currentUser();
  if (!user) return NextResponse.json({ error: "unauthorized", message: "Log in first" }, { status: 401, headers: { "WWW-Authenticate": "Bearer" } });
  return NextResponse.json(user, { headers: { "Cache-Control": "no-store" } });
}
