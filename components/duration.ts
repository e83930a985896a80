/**
 * A duration as Docker reports it back (Go's time.Duration string: "15s", "1m0s",
 * "1h30m0s"). The docker provider stores what the engine returns; a health check
 * written as "60s" comes back as "1m0s" and shows as a change on every preview.
 */
export function goDuration(seconds: number): string {
    if (!Number.isInteger(seconds) || seconds < 0) {
        throw new Error(`goDuration takes whole seconds, got ${seconds}`);
    }
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}
