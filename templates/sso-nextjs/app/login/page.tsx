import { redirect } from "next/navigation";
import { UNAVAILABLE } from "@/lib/sso";

type Search = { idp_initiated_login?: string; email?: string; error?: string; error_description?: string; sso?: string };

// The login the app always had, now asking for the email first (app/login/discover/route.ts decides).
export default async function Login({ searchParams }: { searchParams: Promise<Search> }) {
  const { idp_initiated_login: idpInitiatedLogin, email, error, error_description: description, sso } = await searchParams;
  if (idpInitiatedLogin) { // this is the initiate-login URL registered in the Scalekit dashboard
    redirect(`/auth/sso?idp_initiated_login=${encodeURIComponent(idpInitiatedLogin)}`);
  }
  return (
    <main>
      <h1>Sign in</h1>
      {error && <p className="error">Single sign-on failed: {description || error}</p>}
      {sso === "unavailable" && <p className="error">{UNAVAILABLE}</p>}
      {email ? (
        <form method="post" action="/login/password">
          <input type="email" name="email" id="email" defaultValue={email} required />
          <label>Password <input type="password" name="password" id="password" required autoFocus /></label>
          <button id="sign-in">Sign in</button>
        </form>
      ) : (
        <form method="post" action="/login/discover">
          <label>Work email <input type="email" name="email" id="email" required autoFocus /></label>
          <button id="continue">Continue</button>
        </form>
      )}
    </main>
  );
}
