import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

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
    /** Resources that must be ready before the provider connects (the bundled server). */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
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
            host: args.admin.host,
            port: args.admin.port,
            username: args.admin.user,
            password: pulumi.secret(args.admin.password),
            sslmode: args.admin.sslmode,
            // The provider's default (true) fails on managed servers where the admin is no superuser.
            superuser: false,
        }, { parent: this, dependsOn: args.dependsOn });
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
            });
            owner = role.name;
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
        });

        this.databaseName = database.name;
        this.user = owner;
        this.registerOutputs({ databaseName: this.databaseName, user: this.user, password: this.password });
    }
}
