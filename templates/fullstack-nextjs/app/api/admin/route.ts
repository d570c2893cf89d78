import { NextResponse } from "next/server";
import { apiRoute } from "@/lib/scalekit";

export const GET = apiRoute(() => NextResponse.json({ admin: true }), { permission: "organization:write" });
