"""The seeded dataset generator (fixtures/generate.py) and the committed fixtures/seed files.

Each dataset is parsed here with struct only, independently of the generator, so a layout
slip in either shows up as a failure.
"""

from __future__ import annotations

import importlib.util
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = ROOT / "fixtures" / "seed"


def _load_generator():
    spec = importlib.util.spec_from_file_location("fixtures_generate",
                                                  ROOT / "fixtures" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fixtures_generate", module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

#: Small counts for the tests that generate fresh data.
FEW = {"events": 60, "telemetry": 300, "pcap": 120, "logs": 400}


@pytest.fixture(scope="module")
def seed_zero() -> dict[str, bytes]:
    """Seed 0 at small scale, generated afresh once for the module."""
    return {kind: gen.generate(kind, gen.SCALES["small"][kind], seed=0) for kind in gen.KINDS}


# --- Parsers ----------------------------------------------------------------------------------

def parse_events(data: bytes) -> list[dict]:
    events, offset = [], 0
    while offset < len(data):
        run, number, trigger, timestamp = struct.unpack_from("<IIIQ", data, offset)
        offset += 20
        event = {"run": run, "event": number, "trigger": trigger, "timestamp": timestamp}
        for name, count_format, record_format in (("tracks", "<H", "<fffbB"),
                                                  ("cells", "<H", "<fffB"),
                                                  ("muons", "<B", "<fffB")):
            (count,) = struct.unpack_from(count_format, data, offset)
            offset += struct.calcsize(count_format)
            size = struct.calcsize(record_format)
            event[name] = [struct.unpack_from(record_format, data, offset + k * size)
                           for k in range(count)]
            offset += count * size
        events.append(event)
    assert offset == len(data), "the last event runs past the end of the file"
    return events


def parse_telemetry(data: bytes) -> tuple[tuple[int, int, int], list[int], list[tuple]]:
    sensors, rate, count = struct.unpack_from("<HHI", data)
    record = struct.Struct("<Q" + "f" * sensors)
    assert len(data) == 8 + count * record.size
    rows = [record.unpack_from(data, 8 + k * record.size) for k in range(count)]
    return (sensors, rate, count), [row[0] for row in rows], [row[1:] for row in rows]


def parse_logs(data: bytes) -> list[tuple]:
    entries, offset = [], 0
    while offset < len(data):
        timestamp, level, component, code, thread, length = struct.unpack_from("<QBBHHH", data,
                                                                                offset)
        offset += 16
        message = data[offset:offset + length]
        assert len(message) == length, "message runs past the end of the file"
        offset += length
        entries.append((timestamp, level, component, code, thread, message))
    return entries


def internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def check_pcap(data: bytes) -> list[dict]:
    """Parse a pcap and assert every frame is a consistent Ethernet/IPv4/TCP-or-UDP frame with
    valid checksums and TCP sequence numbers; return a summary per packet."""
    magic, major, minor, zone, sigfigs, snaplen, network = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor, zone, network) == (0xA1B2C3D4, 2, 4, 0, 1)
    packets, offset, previous = [], 24, (0, 0)
    next_seq: dict[tuple, int] = {}
    while offset < len(data):
        seconds, micros, incl_len, orig_len = struct.unpack_from("<IIII", data, offset)
        where = f"packet {len(packets)} at offset {offset}"
        assert micros < 1_000_000 and (seconds, micros) >= previous, where
        assert incl_len == orig_len <= snaplen and incl_len >= 60, where
        previous = (seconds, micros)
        frame = data[offset + 16:offset + 16 + incl_len]
        assert len(frame) == incl_len, where
        offset += 16 + incl_len
        assert frame[12:14] == b"\x08\x00", where
        ip = frame[14:34]
        assert ip[0] == 0x45, where
        total = struct.unpack("!H", ip[2:4])[0]
        assert 14 + total == incl_len or (incl_len == 60 and not any(frame[14 + total:])), where
        assert internet_checksum(ip) == 0xFFFF, f"{where}: IPv4 header checksum"
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        segment = frame[34:14 + total]
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(segment))
        assert internet_checksum(pseudo + segment) == 0xFFFF, f"{where}: L4 checksum"
        sport, dport = struct.unpack("!HH", segment[:4])
        packet = {"time": seconds * 1_000_000 + micros, "proto": proto, "src": src, "dst": dst,
                  "sport": sport, "dport": dport}
        if proto == 17:
            assert struct.unpack("!H", segment[4:6])[0] == len(segment), where
            packet["payload"] = segment[8:]
        else:
            assert proto == 6, where
            seq, ack, offset_byte, flags = struct.unpack("!IIBB", segment[4:14])
            header = (offset_byte >> 4) * 4
            assert 20 <= header <= len(segment), where
            payload = segment[header:]
            key = (src, sport, dst, dport)
            if flags & 0x02:  # SYN
                assert key not in next_seq, f"{where}: second SYN"
            else:
                assert next_seq.get(key) == seq, f"{where}: sequence number out of order"
            if flags & 0x10:  # ACK: exactly what the other side has sent so far
                assert ack == next_seq.get((dst, dport, src, sport)), f"{where}: ack number"
            next_seq[key] = (seq + len(payload) + (1 if flags & 0x03 else 0)) % 2 ** 32
            packet.update(flags=flags, payload=payload, seq=seq, ack=ack)
        packets.append(packet)
    return packets


# --- Determinism and sizes --------------------------------------------------------------------

@pytest.mark.parametrize("kind", gen.KINDS)
def test_same_seed_same_bytes_other_seed_other_bytes(kind):
    first = gen.generate(kind, FEW[kind], seed=7)
    assert gen.generate(kind, FEW[kind], seed=7) == first
    assert gen.generate(kind, FEW[kind], seed=8) != first


@pytest.mark.parametrize("kind", gen.KINDS)
def test_committed_seed_files_match_the_generator(kind, seed_zero):
    committed = (SEED_DIR / gen.FILE_NAMES[kind]).read_bytes()
    assert committed == seed_zero[kind], (
        f"fixtures/seed/{gen.FILE_NAMES[kind]} differs from the generator's output; regenerate "
        "with: python fixtures/generate.py --out fixtures/seed --scale small --seed 0")


def test_seed_files_stay_under_one_megabyte():
    assert sum((SEED_DIR / name).stat().st_size for name in gen.FILE_NAMES.values()) < 1_000_000


@pytest.mark.parametrize("kind", gen.KINDS)
def test_a_smaller_count_gives_a_prefix(kind):
    header = {"events": 0, "telemetry": 8, "pcap": 24, "logs": 0}[kind]
    count = 5000 if kind == "telemetry" else FEW[kind]  # telemetry: across a 4096-sample chunk
    small = gen.generate(kind, count // 2, seed=3)
    large = gen.generate(kind, count, seed=3)
    assert len(small) < len(large)
    assert large[header:].startswith(small[header:])


def test_command_line_writes_the_counts_asked_for(tmp_path):
    counts = {"events": 23, "telemetry": 77, "pcap": 41, "logs": 55}
    args = ["--out", str(tmp_path), "--seed", "5", "--scale", "full"]
    for kind, count in counts.items():
        args += [f"--count-{kind}", str(count)]
    assert gen.main(args) == 0
    assert len(parse_events((tmp_path / "events.bin").read_bytes())) == 23
    telemetry = (tmp_path / "telemetry.bin").read_bytes()
    assert parse_telemetry(telemetry)[0] == (50, 100, 77) and len(telemetry) == 8 + 77 * 208
    assert len(check_pcap((tmp_path / "capture.pcap").read_bytes())) == 41
    assert len(parse_logs((tmp_path / "logs.bin").read_bytes())) == 55
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(gen.FILE_NAMES.values())


def test_kinds_are_independent_of_each_other(tmp_path):
    gen.main(["--out", str(tmp_path), "--kinds", "logs", "--seed", "2", "--count-logs", "90"])
    assert [path.name for path in tmp_path.iterdir()] == ["logs.bin"]
    assert (tmp_path / "logs.bin").read_bytes() == gen.generate("logs", 90, seed=2)


def test_scales_set_the_default_counts():
    assert gen.SCALES["full"] == {"events": 10_000, "telemetry": 180_000, "pcap": 50_000,
                                  "logs": 50_000}
    assert all(gen.SCALES["small"][kind] < gen.SCALES["full"][kind] for kind in gen.KINDS)


def test_script_runs_as_a_command(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "fixtures" / "generate.py"), "--out", str(tmp_path),
         "--kinds", "telemetry,events", "--count-telemetry", "3", "--count-events", "2"],
        capture_output=True, text=True, check=False, timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["events.bin", "telemetry.bin"]
    assert (tmp_path / "telemetry.bin").stat().st_size == 8 + 3 * 208


@pytest.mark.parametrize("args", [["--kinds", "events,video"], ["--count-logs", "-1"],
                                  ["--seed", "-3"], ["--scale", "huge"]])
def test_command_line_rejects_bad_arguments(tmp_path, args):
    with pytest.raises(SystemExit):
        gen.main(["--out", str(tmp_path), *args])


# --- Content of the committed files -----------------------------------------------------------

def test_pcap_is_valid(seed_zero):
    packets = check_pcap(seed_zero["pcap"])
    assert len(packets) == gen.SCALES["small"]["pcap"]
    tcp = [p for p in packets if p["proto"] == 6]
    dns = [p for p in packets if p["proto"] == 17]
    assert tcp and dns and all(53 in (p["sport"], p["dport"]) for p in dns)
    requests = [p["payload"] for p in tcp if p["dport"] in (80, 8080) and p["payload"]]
    assert requests and all(r.startswith(b"GET ") and r.endswith(b"\r\n\r\n") for r in requests)
    answers = [p["payload"] for p in tcp if p["sport"] in (80, 8080)
               and p["payload"].startswith(b"HTTP/1.1 ")]
    assert answers and all(b"Content-Length: " in a for a in answers)
    syns = [p for p in tcp if p["flags"] & 0x12 == 0x02]
    hellos = [p["payload"] for p in tcp if p["dport"] == 443 and p["payload"][:1] == b"\x16"]
    assert syns and hellos and all(h.startswith(b"\x16\x03\x01") for h in hellos)
    assert any(p["payload"].startswith(b"\x17\x03\x03") for p in tcp if p["sport"] == 443)
    gaps = [b["time"] - a["time"] for a, b in zip(packets, packets[1:], strict=False)]
    assert min(gaps) >= 0 and len(set(gaps)) > len(gaps) // 2


def test_pcap_of_another_seed_is_valid():
    assert len(check_pcap(gen.generate("pcap", 400, seed=11))) == 400


@pytest.mark.parametrize("offset, what", [(24 + 16 + 14 + 8, "IPv4 header checksum"),
                                          (24 + 16 + 14 + 20 + 3, "L4 checksum"),
                                          (24 + 16 + 14 + 3, "^packet 0")])
def test_pcap_check_catches_damage(seed_zero, offset, what):
    damaged = bytearray(seed_zero["pcap"])
    damaged[offset] ^= 0x40
    with pytest.raises(AssertionError, match=what):
        check_pcap(bytes(damaged))


def test_logs_parse_with_monotone_timestamps_and_valid_fields(seed_zero):
    entries = parse_logs(seed_zero["logs"])
    assert len(entries) == gen.SCALES["small"]["logs"]
    times = [entry[0] for entry in entries]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    for _, level, component, code, thread, message in entries:
        assert 1 <= level <= 5 and 0 <= component <= 19 and 1 <= thread <= 31
        assert code in ((404, 500, 503) if level >= 4 else (0,)), (level, code)
        assert message and message.isascii() and message.decode().isprintable()
    levels = {entry[1] for entry in entries}
    assert {1, 2, 3, 4} <= levels
    # 500/503 errors come in bursts (an incident), not spread evenly over the log
    failures = [entry[0] for entry in entries if entry[3] in (500, 503)]
    seconds_with_failures = len({t // 1_000_000 for t in failures})
    assert len(failures) >= 10
    assert seconds_with_failures < 0.5 * (times[-1] - times[0]) / 1_000_000
    # threads stick to components: most components use at most three threads for 97% of lines
    by_component: dict[int, dict[int, int]] = {}
    for entry in entries:
        counts = by_component.setdefault(entry[2], {})
        counts[entry[4]] = counts.get(entry[4], 0) + 1
    for component, counts in by_component.items():
        top = sorted(counts.values(), reverse=True)[:4]
        assert sum(top) >= 0.9 * sum(counts.values()), component


def test_telemetry_header_matches_and_readings_are_realistic(seed_zero):
    (sensors, rate, count), stamps, rows = parse_telemetry(seed_zero["telemetry"])
    assert (sensors, rate, count) == (50, 100, gen.SCALES["small"]["telemetry"])
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(steps) > 0 and steps.count(10) > 0.8 * len(steps)
    for k, (low, high, step) in enumerate([(0, 60, 0.0625), (100_000, 103_000, 0.5),
                                           (0, 100, None), (-4, 4, 2 ** -13)]):
        values = [row[c] for row in rows for c in range(k, sensors, 4)]
        assert all(low <= v <= high for v in values), k
        if step is not None:  # an ADC code times its step, exactly
            assert all((v / step).is_integer() for v in values), k
    # pressure channels share the 10 s pump cycle
    pressure = [[row[c] for row in rows] for c in range(1, sensors, 4)]
    assert _correlation(pressure[0], pressure[1]) > 0.8


def test_events_parse_with_physical_structure(seed_zero):
    events = parse_events(seed_zero["events"])
    assert len(events) == gen.SCALES["small"]["events"]
    t0 = events[0]["timestamp"]
    for index, event in enumerate(events):
        assert event["run"] == 450_000 + index // 1000
        assert event["trigger"] in (1, 2, 4, 8, 16)
        assert (event["timestamp"] - t0) % 25 == 0
        assert all(abs(t[1]) < 2.6 and t[3] in (-1, 1) and 8 <= t[4] <= 31
                   for t in event["tracks"])
        assert all(0 <= c[3] <= 3 and abs(c[1]) < 2.5 for c in event["cells"])
        assert all(1 <= m[3] <= 3 for m in event["muons"])
    stamps = [event["timestamp"] for event in events]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    muons = sum(len(e["muons"]) for e in events)
    assert sum(len(e["muons"]) for e in events if e["trigger"] in (4, 8)) > 0.6 * muons
    tracks = [len(e["tracks"]) for e in events]
    cells = [len(e["cells"]) for e in events]
    assert _correlation(tracks, cells) > 0.5


def _correlation(xs, ys) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy)
