"""What Guest and AsyncGuest share: the address, the relay for addresses
grpcio cannot dial, timeouts, and errors from failed calls."""
from __future__ import annotations

from typing import Any, Optional, Union

import grpc

from .address import Address, MAITRED_PORT, VSH_PORT, parse_address
from .errors import Error, Unavailable, from_rpc_error
from ._relay import Relay

# The default deadline of calls that are not transfers or processes.
DEFAULT_TIMEOUT = 30.0


class Default:
    """The marker of "the guest's default timeout"."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = Default()


class Endpoint:
    """An address made dialable by grpcio: directly (unix, tcp) or through a relay."""

    def __init__(self, address: Union[str, Address], connect_timeout: float) -> None:
        self.address = address if isinstance(address, Address) else parse_address(address, MAITRED_PORT)
        target = self.address.grpc_target()
        self.relay: Optional[Relay] = None
        if target is None:
            self.relay = Relay(self.address, connect_timeout)
            target = self.relay.target
        self.target = target

    def error(self, e: grpc.RpcError) -> Error:
        """The SDK's exception for a failed call; an unreachable guest's
        message says why the connection failed, when the relay knows."""
        err = from_rpc_error(e)
        if isinstance(err, Unavailable) and self.relay is not None and self.relay.last_error:
            return Unavailable(self.relay.last_error, err.code)
        if isinstance(err, Unavailable) and self.address.kind in ("unix", "tcp") and "failed to connect" in err.message:
            return Unavailable(f"cannot connect to {self.address}: {err.message}", err.code)
        return err

    def vsh_address(self, given: Union[str, Address, None] = None) -> Optional[Address]:
        """The guest's vshd: ``given``, else port 9001 of the same VM for
        vsock and hvsock addresses (None for the others)."""
        if given is not None:
            return parse_address(given, VSH_PORT) if isinstance(given, str) else given
        a = self.address
        if a.kind in ("vsock", "hvsock"):
            return Address(a.kind, path=a.path, cid=a.cid, port=VSH_PORT)
        return None

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()


class GuestCore:
    """What Guest and AsyncGuest keep alike: the endpoint, the default
    deadline, the vshd address, errors from failed calls."""

    def __init__(self, address: Union[str, Address], timeout: Optional[float],
                 vsh_address: Union[str, Address, None]) -> None:
        self._endpoint = Endpoint(address, timeout or DEFAULT_TIMEOUT)
        self.address: Address = self._endpoint.address
        self.timeout = timeout
        self._vsh = self._endpoint.vsh_address(vsh_address)

    def _deadline(self, timeout: Any) -> Optional[float]:
        return self.timeout if timeout is DEFAULT else timeout

    def _error(self, e: grpc.RpcError) -> Error:
        return self._endpoint.error(e)
