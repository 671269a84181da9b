"""Phase `sasl`: web's peak POST /api/buy against a Kafka with SASL/SCRAM-SHA-512 and ACLs (web its own principal)
beside the same web against the plaintext Kafka, in the same run, one web at a time, alternately, twice each; the
better of each pair is kept: the machine is shared and noisy. Both Kafkas are one KRaft node of the same version on
this machine; the SCRAM handshake is paid once a connection, so what differs at peak is the SASL framing and the
ACL checks on each produce request."""

from __future__ import annotations

from scripts.stack.kafka import KafkaServer
from scripts.stack.kafka_security import KafkaSecurity
from scripts.stack.process import free_port
from scripts.stack.service import Names
from scripts.stack.system import System

from .measure import QUIET, load, say


def bench_sasl(system: System, seconds: float) -> dict:
    burst = ["--burst", "1000000", "--duration", str(seconds), "--concurrency", "64", "--users", "200"]
    folder = system.workdir / "sasl-kafka"
    secure = KafkaServer(folder, port=free_port(), heap="1g", security=KafkaSecurity.made_in(folder))
    sasl = System(folder / "system", secure, system.mongodb_uri)
    peaks: dict[str, list[float]] = {"off": [], "on": []}
    try:
        sasl.start_servers()
        for run, mode in enumerate(("off", "on", "off", "on")):
            part = (system if mode == "off" else sasl).beside(Names.of(f"bench_sasl_{mode}_{run}"), QUIET)
            part.create_topics()  # with SASL: web's and api's principals, and their ACLs on these names
            web = part.start_web()
            try:
                say(f"sasl: web's peak with Kafka's SASL {mode}")
                load(web.address, "--burst", "2000", "--concurrency", "64")
                result = load(web.address, *burst)
            finally:
                part.stop()
            if result["accepted"] != result["sent"]:
                raise RuntimeError(f"SASL {mode}: {result['sent'] - result['accepted']} buys not accepted")
            peaks[mode].append(result["rate"])
    finally:
        sasl.stop()
    off, on = max(peaks["off"]), max(peaks["on"])
    return {"rps_off": off, "rps_on": on, "ratio": round(on / off, 3), "runs_off": peaks["off"],
            "runs_on": peaks["on"]}
