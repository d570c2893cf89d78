// A missing variable stops the server at start with one clear line, not at the first request.
import { benchmarkWithoutAuth, config } from './scalekit';

try {
    config();
    if (benchmarkWithoutAuth()) console.error('WARNING: serving WITHOUT auth (MCP_BENCHMARK_WITHOUT_AUTH=1, benchmarks only)');
} catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exit(2);
}
