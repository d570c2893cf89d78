import { NextResponse } from "next/server";
import { apiRoute } from "@/lib/scalekit";

export const GET = apiRoute((user) => NextResponse.json(user));
