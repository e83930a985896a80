// HTTP as the Calendars backend speaks it to the CalDAV server: X-LS-Api-Key + X-LS-User.
import * as http from "node:http";
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
    // A connection of its own per request (no keep-alive pool): a pooled connection the server
    // (or Docker's port proxy) closed while the scenario changed the stack fails the next request.
    return new Promise((resolve, reject) => {
        const request = http.request(url, { method, headers, agent: false, timeout: 15_000 }, (response) => {
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
            response.on("error", reject);
        });
        request.on("timeout", () => request.destroy(new Error(`${method} ${url}: no answer within 15 s`)));
        request.on("error", reject);
        request.end(options.body);
    });
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
