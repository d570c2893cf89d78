// A missing variable stops the server at start with one clear line, not at the first request.
import { config } from './scalekit';

try {
    config();
} catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exit(2);
}
