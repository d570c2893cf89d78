import { cookies } from "next/headers";
import { endSession } from "@/lib/db";
import { crossSite, redirectTo, SESSION_COOKIE } from "@/lib/http";

export async function POST(request: Request) {
  const refused = crossSite(request);
  if (refused) return refused;
  endSession((await cookies()).get(SESSION_COOKIE)?.value);
  const response = redirectTo("/login");
  response.cookies.delete({ name: SESSION_COOKIE, path: "/" });
  return response;
}
