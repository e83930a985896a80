// One user's calendar on a deployed stack, through DAV with the stack's own key: what a
// scenario writes before a fault or an operation and reads back after it.
import { dav, invitation } from "./dav";
import { TestStack } from "./stack";

export class Calendar {
    constructor(
        private readonly stack: TestStack,
        /** Host port where the stack publishes CalDAV (caldav.publish). */
        private readonly port: number,
        readonly user = "alice@example.org",
        readonly name = "work",
    ) {}

    private async auth(): Promise<{ key: string; user: string }> {
        const outputs = await this.stack.outputs();
        return { key: (outputs.apiKeys.value as { outbound: string }).outbound, user: this.user };
    }

    private url(suffix = ""): string {
        return `http://127.0.0.1:${this.port}/caldav/calendars/${this.user}/${this.name}/${suffix}`;
    }

    /** MKCALENDAR: 201 when created. */
    async create(): Promise<number> {
        return (await dav(this.url(), "MKCALENDAR", await this.auth())).status;
    }

    /** PUT of an event with an attendee: 201 when created. */
    async put(uid: string): Promise<number> {
        return (await dav(this.url(`${uid}.ics`), "PUT", { ...(await this.auth()), body: invitation(uid) })).status;
    }

    /** GET of an event: 200 when it is there, 404 when not. */
    async get(uid: string): Promise<number> {
        return (await dav(this.url(`${uid}.ics`), "GET", await this.auth())).status;
    }
}
