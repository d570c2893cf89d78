// Starts the app on 127.0.0.1:$PORT. Loads .env first when there is one (real variables win).
import { existsSync } from "node:fs";

if (existsSync(".env")) process.loadEnvFile?.(".env");
const { app } = await import("./src/app.js");
const port = Number(process.env.PORT || 3100);
app.listen(port, "127.0.0.1", () => console.log(`listening on http://localhost:${port}`));
