"""The few ICS provider tx messages the emulator signs, built at import time (cosmpy ships no ICS protos).

Field numbers follow interchain_security/ccv/provider/v1/tx.proto (v6.4): registering them in protobuf's
default pool lets `json_format` render a Tx holding them as `{"@type": "/interchain_security…", …}` exactly
like the gateway does. If another module already registered the real file, that one is reused.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_PACKAGE = "interchain_security.ccv.provider.v1"
_FILE = "interchain_security/ccv/provider/v1/tx.proto"

_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE

# message name -> [(field, number, type, type_name)]
_MESSAGES: dict[str, list[tuple[str, int, int, str]]] = {
    "MsgOptIn": [
        ("chain_id", 1, _STRING, ""),
        ("provider_addr", 2, _STRING, ""),
        ("consumer_key", 3, _STRING, ""),
        ("signer", 4, _STRING, ""),
        ("consumer_id", 5, _STRING, ""),
    ],
    "MsgOptInResponse": [],
    "MsgOptOut": [
        ("chain_id", 1, _STRING, ""),
        ("provider_addr", 2, _STRING, ""),
        ("signer", 3, _STRING, ""),
        ("consumer_id", 4, _STRING, ""),
    ],
    "MsgOptOutResponse": [],
    "ConsumerMetadata": [
        ("name", 1, _STRING, ""),
        ("description", 2, _STRING, ""),
        ("metadata", 3, _STRING, ""),
    ],
    "MsgCreateConsumer": [
        ("submitter", 1, _STRING, ""),
        ("chain_id", 2, _STRING, ""),
        ("metadata", 3, _MESSAGE, f".{_PACKAGE}.ConsumerMetadata"),
    ],
    "MsgCreateConsumerResponse": [("consumer_id", 1, _STRING, "")],
}


def _register() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName(f"{_PACKAGE}.MsgOptIn")
        return pool
    except KeyError:
        pass
    file_proto = descriptor_pb2.FileDescriptorProto(name=_FILE, package=_PACKAGE, syntax="proto3")
    for name, fields in _MESSAGES.items():
        message = file_proto.message_type.add(name=name)
        for field_name, number, field_type, type_name in fields:
            field = message.field.add(
                name=field_name,
                number=number,
                type=field_type,  # type: ignore[arg-type]
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = type_name
    pool.Add(file_proto)
    return pool


_POOL = _register()


def message_class(name: str) -> type[Message]:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


MsgOptIn = message_class("MsgOptIn")
MsgOptInResponse = message_class("MsgOptInResponse")
MsgOptOut = message_class("MsgOptOut")
MsgOptOutResponse = message_class("MsgOptOutResponse")
MsgCreateConsumer = message_class("MsgCreateConsumer")
MsgCreateConsumerResponse = message_class("MsgCreateConsumerResponse")
ConsumerMetadata = message_class("ConsumerMetadata")
