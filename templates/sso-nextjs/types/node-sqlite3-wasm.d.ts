// The few parts of node-sqlite3-wasm (it ships no types) that lib/db.ts uses.
declare module "node-sqlite3-wasm" {
  type Value = string | number | bigint | null | Uint8Array;
  type Row = Record<string, Value>;
  export class Database {
    constructor(path: string);
    exec(sql: string): void;
    run(sql: string, values?: Value[]): { changes: number; lastInsertRowid: number | bigint };
    get(sql: string, values?: Value[]): Row | null;
    all(sql: string, values?: Value[]): Row[];
    close(): void;
  }
  const sqlite: { Database: typeof Database };
  export default sqlite;
}
