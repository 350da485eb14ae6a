#!/usr/bin/python3
"""A non-Node client of the gateway's gRPC PushService.Stream.

Uses Debian's python3-grpcio and python3-protobuf only. There is no protoc
plugin for Python in Debian's grpc packages (grpc_tools is not packaged), so
the message classes are built at run time from proto/ itself: a
FileDescriptorSet made by `buf build` (shipped in npm as @bufbuild/buf) is
loaded into a descriptor pool. Prints one JSON line per frame received and
exits 0 after --count events (1 if the stream ends first or --timeout passes).
"""
import argparse
import json
import os
import queue
import sys
import threading
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def message_classes(desc_path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(desc_path, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:  # buf writes dependencies first
        pool.Add(file)

    def cls(name):
        d = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
            return message_factory.GetMessageClass(d)
        return message_factory.MessageFactory(pool).GetPrototype(d)

    return cls("marketpush.v1.ClientFrame"), cls("marketpush.v1.ServerBatch")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, help="the gateway's gRPC address, host:port")
    ap.add_argument("--desc", required=True, help="FileDescriptorSet of proto/ (buf build -o FILE)")
    ap.add_argument("--topics", required=True, help="comma-separated stream names")
    ap.add_argument("--count", type=int, default=20, help="events to receive before exiting")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    ClientFrame, ServerBatch = message_classes(args.desc)
    outbox = queue.Queue()
    done = object()

    first = ClientFrame(id=1)
    first.subscribe.topics.extend(args.topics.split(","))
    outbox.put(first)

    def requests():
        while True:
            item = outbox.get()
            if item is done:
                return
            yield item

    channel = grpc.insecure_channel(args.target)
    stream = channel.stream_stream(
        "/marketpush.v1.PushService/Stream",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=ServerBatch.FromString,
    )
    call = stream(iter(requests()))
    threading.Timer(args.timeout, call.cancel).start()

    events = 0
    ok = False
    try:
        for batch in call:
            for frame in batch.frames:
                kind = frame.WhichOneof("kind")
                if kind == "event":
                    ev = frame.event
                    events += 1
                    print(json.dumps({"event": ev.WhichOneof("payload"), "topic": ev.topic, "seq": ev.seq, "pt": ev.publish_time_us}), flush=True)
                elif kind == "heartbeat":
                    # The gateway cuts clients that stay silent: a Ping answers its heartbeat.
                    ping = ClientFrame()
                    ping.ping.client_time_us = int(time.time() * 1e6)
                    outbox.put(ping)
                    print(json.dumps({"heartbeat": True}), flush=True)
                elif kind == "result":
                    print(json.dumps({"result": frame.result.id}), flush=True)
                elif kind == "error":
                    print(json.dumps({"error": frame.error.code, "msg": frame.error.msg}), flush=True)
                elif kind == "resync":
                    print(json.dumps({"resync": frame.resync.topic, "reason": frame.resync.reason}), flush=True)
            if events >= args.count:
                ok = True
                break
    except grpc.RpcError as err:
        print(json.dumps({"status": str(err.code()), "details": err.details()}), flush=True)
    finally:
        outbox.put(done)
        call.cancel()
        channel.close()
    # The timeout timer is the only other thread: do not wait for it.
    sys.stdout.flush()
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
