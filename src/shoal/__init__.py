"""shoal: small models first, escalation by confidence, and accuracy per dollar."""

from shoal.errors import ShoalError, UserInputError
from shoal.pricing import Cost, MachinePrice, Price
from shoal.providers.base import Message, Provider, Request, Response, Usage

__all__ = [
    "Cost",
    "MachinePrice",
    "Message",
    "Price",
    "Provider",
    "Request",
    "Response",
    "ShoalError",
    "Usage",
    "UserInputError",
]

__version__ = "0.1.0"
