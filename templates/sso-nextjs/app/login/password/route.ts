import { passwordMatches, row, type User } from "@/lib/db";
import { crossSite, message, signedIn } from "@/lib/http";

export async function POST(request: Request) {
  const refused = crossSite(request);
  if (refused) return refused;
  const form = await request.formData();
  const email = String(form.get("email") ?? "").trim();
  const user = row<User>("SELECT * FROM users WHERE email = ? AND active = 1", [email]);
  if (!user || !passwordMatches(String(form.get("password") ?? ""), user.password_hash)) {
    return message("Sign in", "Incorrect email or password.", 401);
  }
  return signedIn(user.id);
}
