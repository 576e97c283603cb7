"""A separate process that registers and lists datasets in a loop.

Run as ``python -m tests.concurrent_writer HOME WORKER COUNT``; several at
once check that one workspace takes concurrent writers.
"""

import sys

import opml


def register_many(home: str, worker: int, count: int) -> None:
    workspace = opml.connect(home)
    for index in range(count):
        content = f"worker,index,value\n{worker},{index},{worker * 1000 + index}\n".encode()
        workspace.datasets.register_from_bytes(f"w{worker}", content, filename=f"w{worker}-{index}.csv")
        workspace.datasets.register_from_bytes("shared", content, filename=f"shared-{worker}-{index}.csv")
        workspace.datasets.list()


if __name__ == "__main__":
    register_many(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
