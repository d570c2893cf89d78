// The app's own users. This demo store stands in for your user database and password check.
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

export interface AppUser {
    id: string;
    email: string;
    givenName: string;
    familyName: string;
}

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, length: number) => Promise<Buffer>;

// One demo user, ada@example.com, whose password comes from DEMO_USER_PASSWORD; only its hash is kept.
const demoPassword = process.env.DEMO_USER_PASSWORD;
if (!demoPassword) {
    console.error('error: DEMO_USER_PASSWORD is not set (see .env.example)');
    process.exit(2);
}
const salt = randomBytes(16);
const users = [{
    user: { id: 'app-user-1', email: 'ada@example.com', givenName: 'Ada', familyName: 'Lovelace' },
    hash: scryptSync(demoPassword, salt, 32)
}];

// Hashing runs in Node's thread pool, not on the event loop.
export async function checkPassword(email: string, password: string): Promise<AppUser | undefined> {
    const entry = users.find(u => u.user.email === email.trim().toLowerCase());
    const hash = await scryptAsync(password, salt, 32); // the same work for an unknown email
    return entry && timingSafeEqual(hash, entry.hash) ? entry.user : undefined;
}
