export default function Home() {
  return (
    <main>
      <h1>Home</h1>
      <p>
        <a href="/auth/login">Log in</a> · <a href="/auth/login?provider=google">Log in with Google</a>
      </p>
      <form action="/auth/login">
        <label>
          Work email <input name="login_hint" type="email" />
        </label>
        <button>Continue with SSO</button>
      </form>
    </main>
  );
}
