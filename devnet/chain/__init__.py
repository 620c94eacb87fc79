"""Emulator of the ICS provider chain: CometBFT RPC + websocket, SDK/ICS REST, consumer nodes, admin API.

Speaks the real wire formats (reference/chain-wire-formats.md) so official clients work unmodified.
Entry point: `devnet.chain.server.ChainEmulator`.
"""

from devnet.chain.server import ChainEmulator

__all__ = ["ChainEmulator"]
