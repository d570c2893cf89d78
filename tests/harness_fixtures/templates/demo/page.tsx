export default function Page() {
  return (
    <main>
      {/* region button */}
      <a href="/login">Log in</a>
      {/* endregion button */}
    </main>
  );
}
