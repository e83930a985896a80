// IPv4 arithmetic at its edges: what counts as an address or a CIDR, where a block
// starts and ends, and the allocation range handed to Docker.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
    broadcastAddress, cidrContains, defaultGateway, formatCidr, formatIpv4, largestFreeBlock, parseCidr, parseIpv4,
} from "../components/ipv4";

const ip = (text: string): number => {
    const value = parseIpv4(text);
    assert.ok(value !== undefined, text);
    return value;
};
const cidr = (text: string) => {
    const value = parseCidr(text);
    assert.ok(value !== undefined, text);
    return value;
};

describe("IPv4 addresses", () => {
    test("every octet from 0 to 255, and nothing else, round-trips", () => {
        for (const text of ["0.0.0.0", "255.255.255.255", "10.199.249.9", "1.100.200.250", "128.0.0.1", "9.99.100.249"]) {
            assert.equal(formatIpv4(ip(text)), text);
        }
        assert.equal(ip("255.255.255.255"), 2 ** 32 - 1);
        assert.equal(ip("0.0.1.0"), 256);
        for (const text of ["256.0.0.1", "1.2.3.260", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d", "1..2.3", "300.1.1.1", "1.2.3.-4"]) {
            assert.equal(parseIpv4(text), undefined, text);
        }
    });
});

describe("CIDR blocks", () => {
    test("the address must be the block's network address, the prefix 0 to 32", () => {
        assert.deepEqual(parseCidr("10.0.0.0/8"), { network: ip("10.0.0.0"), prefix: 8 });
        assert.deepEqual(parseCidr("0.0.0.0/0"), { network: 0, prefix: 0 });
        assert.deepEqual(parseCidr("10.1.2.3/32"), { network: ip("10.1.2.3"), prefix: 32 });
        // Number() would read "0x10", "16e0" and " 16" as 16: only plain decimal digits count.
        for (const text of ["10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/8/1", "10.0.0.0/", "10.0.0.0", "10.0.0.0/123", "10.0.0.0/x", "10.0.0/8",
            "10.0.0.0/0x10", "10.0.0.0/16e0", "10.0.0.0/ 16", "10.0.0.0/1 "]) {
            assert.equal(parseCidr(text), undefined, text);
        }
        assert.equal(formatCidr(cidr("192.168.64.0/20")), "192.168.64.0/20");
    });

    test("a block holds its first to its last address, and nothing around it", () => {
        const block = cidr("10.20.0.0/24");
        assert.ok(cidrContains(block, ip("10.20.0.0")));
        assert.ok(cidrContains(block, ip("10.20.0.255")));
        assert.ok(!cidrContains(block, ip("10.20.1.0")));
        assert.ok(!cidrContains(block, ip("10.19.255.255")));
        assert.equal(formatIpv4(broadcastAddress(block)), "10.20.0.255");
        assert.equal(formatIpv4(defaultGateway(block)), "10.20.0.1");
        assert.equal(formatIpv4(broadcastAddress(cidr("172.16.0.0/12"))), "172.31.255.255");
    });
});

describe("allocation range", () => {
    test("the largest aligned block without a reserved address, the first of equals", () => {
        const subnet = cidr("10.20.0.0/24");
        assert.equal(formatCidr(largestFreeBlock(subnet, [])!), "10.20.0.0/25");
        assert.equal(formatCidr(largestFreeBlock(subnet, [ip("10.20.0.1")])!), "10.20.0.128/25");
        assert.equal(formatCidr(largestFreeBlock(subnet, [ip("10.20.0.1"), ip("10.20.0.255")])!), "10.20.0.64/26");
        assert.equal(formatCidr(largestFreeBlock(subnet, [ip("10.20.0.127"), ip("10.20.0.128")])!), "10.20.0.0/26");
    });

    test("never smaller than a /30, and nothing when no /30 is free", () => {
        const subnet = cidr("10.0.0.0/28");
        const everyFourth = ["10.0.0.1", "10.0.0.5", "10.0.0.9", "10.0.0.13"].map(ip);
        assert.equal(largestFreeBlock(subnet, everyFourth), undefined);
        assert.equal(formatCidr(largestFreeBlock(subnet, everyFourth.slice(0, 3))!), "10.0.0.12/30");
    });
});
