// Small IPv4 arithmetic for validating the network config and for choosing
// Docker's allocation range. Addresses are unsigned 32-bit numbers.

export interface Cidr {
    network: number;
    prefix: number;
}

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function parseIpv4(text: string): number | undefined {
    const match = IPV4.exec(text);
    if (!match) {
        return undefined;
    }
    return match.slice(1).reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function formatIpv4(address: number): string {
    return [24, 16, 8, 0].map((shift) => (address >>> shift) & 255).join(".");
}

function blockSize(prefix: number): number {
    return 2 ** (32 - prefix);
}

/** Parses `a.b.c.d/n`; undefined unless the address is the block's own network address. */
export function parseCidr(text: string): Cidr | undefined {
    const [address, prefixText, ...rest] = text.split("/");
    const network = parseIpv4(address);
    if (network === undefined || rest.length > 0 || !/^\d{1,2}$/.test(prefixText ?? "")) {
        return undefined;
    }
    const prefix = Number(prefixText);
    if (prefix > 32 || network % blockSize(prefix) !== 0) {
        return undefined;
    }
    return { network, prefix };
}

export function formatCidr(cidr: Cidr): string {
    return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, address: number): boolean {
    return address >= cidr.network && address < cidr.network + blockSize(cidr.prefix);
}

export function broadcastAddress(cidr: Cidr): number {
    return cidr.network + blockSize(cidr.prefix) - 1;
}

/** Docker's default gateway: the first host address of the subnet. */
export function defaultGateway(cidr: Cidr): number {
    return cidr.network + 1;
}

/**
 * The largest aligned block inside `subnet` that holds none of `reserved`:
 * handed to Docker as the allocation range so that dynamically addressed
 * containers can never take an address that is reserved for a fixed IP.
 */
export function largestFreeBlock(subnet: Cidr, reserved: number[]): Cidr | undefined {
    for (let prefix = subnet.prefix + 1; prefix <= 30; prefix++) {
        const size = blockSize(prefix);
        for (let network = subnet.network; network < subnet.network + blockSize(subnet.prefix); network += size) {
            const block = { network, prefix };
            if (!reserved.some((address) => cidrContains(block, address))) {
                return block;
            }
        }
    }
    return undefined;
}
