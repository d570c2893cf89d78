// The app's own users. This demo store stands in for your user database and password check.
import { scryptSync, timingSafeEqual } from 'node:crypto';

export interface AppUser {
    id: string;
    email: string;
    givenName: string;
    familyName: string;
}

// Demo user: ada@example.com / ada-lovelace-demo (scrypt hash, never the password itself).
const users = [{
    user: { id: 'app-user-1', email: 'ada@example.com', givenName: 'Ada', familyName: 'Lovelace' },
    salt: 'c4a91d0827cc15e4b2e33c2ada3ad9b0',
    hash: '5485ffbb758ee35ddc562710d9e8eee086fcbbf9247df0511b115830b2df76e3'
}];

export function checkPassword(email: string, password: string): AppUser | undefined {
    const entry = users.find(u => u.user.email === email.trim().toLowerCase());
    const hash = scryptSync(password, entry?.salt ?? 'no-such-user', 32); // same work for unknown emails
    return entry && timingSafeEqual(hash, Buffer.from(entry.hash, 'hex')) ? entry.user : undefined;
}
