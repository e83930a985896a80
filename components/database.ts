import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { gated } from "./settle";

/** How the provider reaches PostgreSQL as a role that may create databases and roles. */
export interface PostgresAdminConnection {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    user: pulumi.Input<string>;
    password: pulumi.Input<string>;
    sslmode: pulumi.Input<string>;
}

export interface CaldavDatabaseArgs {
    admin: PostgresAdminConnection;
    /** Name of the database to create. */
    database: string;
    /** Login role of the CalDAV server; it owns the database. */
    user: string;
    /** Password of an existing role `user`; when absent the role is created with a generated password. */
    existingUserPassword?: pulumi.Input<string>;
    /** Refuse `pulumi destroy` and any replacement of the database. */
    protect: boolean;
}

/** A RunError: Pulumi prints its message without a stack trace. */
export class RenameError extends pulumi.RunError {
    constructor(message: string) {
        super(message);
        this.name = "RenameError";
    }
}

/**
 * `actual` (the name in the stack's state), or a failure when the config asks for another:
 * the provider would rename the live database or role in place, which `protect` does not
 * prevent, and every calendar would move under the new name.
 */
function sameName(actual: pulumi.Output<string>, wanted: string, key: string, what: string): pulumi.Output<string> {
    return actual.apply((name) => {
        if (name !== undefined && name !== wanted) {
            throw new RenameError(
                `${key} is ${wanted}, but this stack's ${what} is ${name}: renaming it in place is not supported. ` +
                    `Set ${key} back to ${name}. To move the calendars to another ${what}, deploy a new stack and restore a dump into it.`,
            );
        }
        return name;
    });
}

/** The `caldav` database on the Messages PostgreSQL, owned by the server's login role. */
export class CaldavDatabase extends pulumi.ComponentResource {
    public readonly databaseName: pulumi.Output<string>;
    public readonly user: pulumi.Output<string>;
    /** Secret. */
    public readonly password: pulumi.Output<string>;

    constructor(name: string, args: CaldavDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("calendars:caldav:Database", name, {}, opts);

        const provider = new postgresql.Provider(name, {
            // A bundled server's host is an output of its container, known once it runs healthy:
            // the provider waits for it.
            host: args.admin.host,
            port: args.admin.port,
            username: args.admin.user,
            password: pulumi.secret(args.admin.password),
            sslmode: args.admin.sslmode,
            // The provider's default (true) fails on managed servers where the admin is no superuser.
            superuser: false,
        }, { parent: this });
        const options = { parent: this, provider };

        let owner: pulumi.Output<string>;
        if (args.existingUserPassword === undefined) {
            const generated = new random.RandomPassword(`${name}-password`, {
                length: 40,
                special: false,
            }, { parent: this });
            this.password = pulumi.secret(generated.result);
            const role = new postgresql.Role(name, {
                name: args.user,
                login: true,
                password: this.password,
            }, {
                ...options,
                // The role owns the calendar tables: dropping it would drop or orphan them.
                retainOnDelete: true,
                // A new postgres.user must not rename the live role: refused below instead.
                ignoreChanges: ["name"],
            });
            owner = sameName(role.name, args.user, "postgres.user", "login role");
        } else {
            this.password = pulumi.secret(args.existingUserPassword);
            owner = pulumi.output(args.user);
        }

        const database = new postgresql.Database(name, {
            name: args.database,
            owner,
        }, {
            ...options,
            // Calendar data outlives the stack: `pulumi destroy` forgets the database, never drops it.
            retainOnDelete: true,
            protect: args.protect,
            // A new postgres.database must not rename the live database: refused below instead.
            ignoreChanges: ["name"],
        });

        // Gated on the owner: a refused role name fails these at once (the database then never registers).
        this.databaseName = gated([owner], sameName(database.name, args.database, "postgres.database", "database"));
        this.user = owner;
        this.registerOutputs({ databaseName: this.databaseName, user: this.user, password: this.password });
    }
}
