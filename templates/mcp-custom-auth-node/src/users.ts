// The app's own users. This demo store stands in for your user database and password check.
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

export interface AppUser {
    id: string;
    email: string;
    givenName: string;
    familyName: string;
}

function hashed(password: string, salt: Buffer): Buffer {
    return scryptSync(password, salt, 32);
}

// One demo user, ada@example.com, whose password comes from DEMO_USER_PASSWORD; only its hash is kept.
const demoPassword = process.env.DEMO_USER_PASSWORD;
if (!demoPassword) {
    console.error('error: DEMO_USER_PASSWORD is not set (see .env.example)');
    process.exit(2);
}
const salt = randomBytes(16);
const users = [{
    user: { id: 'app-user-1', email: 'ada@example.com', givenName: 'Ada', familyName: 'Lovelace' },
    hash: hashed(demoPassword, salt)
}];

export function checkPassword(email: string, password: string): AppUser | undefined {
    const entry = users.find(u => u.user.email === email.trim().toLowerCase());
    const hash = hashed(password, salt); // the same work for an unknown email
    return entry && timingSafeEqual(hash, entry.hash) ? entry.user : undefined;
}
