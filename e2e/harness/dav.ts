// HTTP as the Calendars backend speaks it to the CalDAV server: X-LS-Api-Key + X-LS-User.
import * as net from "node:net";

export interface DavResponse {
    status: number;
    body: string;
}

export async function dav(url: string, method: string, options: { key?: string; user?: string; body?: string; depth?: string } = {}): Promise<DavResponse> {
    const headers: Record<string, string> = {};
    if (options.key !== undefined) {
        headers["X-LS-Api-Key"] = options.key;
    }
    if (options.user !== undefined) {
        headers["X-LS-User"] = options.user;
    }
    if (options.depth !== undefined) {
        headers.Depth = options.depth;
    }
    if (options.body !== undefined) {
        headers["Content-Type"] = method === "PUT" ? "text/calendar" : "application/xml";
    }
    const response = await fetch(url, { method, headers, body: options.body, signal: AbortSignal.timeout(15_000) });
    return { status: response.status, body: await response.text() };
}

/** A TCP port on 127.0.0.1 that nothing listens on now. */
export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/** An event with an attendee: the server must hand it to the scheduling callback. */
export function invitation(uid: string, attendee?: string): string {
    return [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calendars-caldav e2e//EN", "BEGIN:VEVENT",
        `UID:${uid}`, "DTSTAMP:20261128T000000Z", "DTSTART:20261201T100000Z", "DTEND:20261201T110000Z",
        "SUMMARY:e2e event",
        ...(attendee ? ["ORGANIZER:mailto:alice@example.org", `ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:${attendee}`] : []),
        "END:VEVENT", "END:VCALENDAR", "",
    ].join("\r\n");
}
