"""Protobuf messages <-> the state machine's plain dataclasses (petcd.storage.kv)."""

from __future__ import annotations

from petcd.proto import kv_pb2
from petcd.proto import rpc_pb2 as pb
from petcd.storage import kv


def kv_to_pb(k: kv.KeyValue) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(
        key=k.key,
        create_revision=k.create_revision,
        mod_revision=k.mod_revision,
        version=k.version,
        value=k.value,
        lease=k.lease,
    )


def event_to_pb(e: kv.Event) -> kv_pb2.Event:
    out = kv_pb2.Event(type=int(e.type), kv=kv_to_pb(e.kv))  # type: ignore[arg-type]
    if e.prev_kv is not None:
        out.prev_kv.CopyFrom(kv_to_pb(e.prev_kv))
    return out


def range_from_pb(r: pb.RangeRequest) -> kv.RangeRequest:
    return kv.RangeRequest(
        key=r.key,
        range_end=r.range_end,
        limit=r.limit,
        revision=r.revision,
        sort_order=kv.SortOrder(r.sort_order),
        sort_target=kv.SortTarget(r.sort_target),
        serializable=r.serializable,
        keys_only=r.keys_only,
        count_only=r.count_only,
        min_mod_revision=r.min_mod_revision,
        max_mod_revision=r.max_mod_revision,
        min_create_revision=r.min_create_revision,
        max_create_revision=r.max_create_revision,
    )


def put_from_pb(r: pb.PutRequest) -> kv.PutRequest:
    return kv.PutRequest(
        key=r.key,
        value=r.value,
        lease=r.lease,
        prev_kv=r.prev_kv,
        ignore_value=r.ignore_value,
        ignore_lease=r.ignore_lease,
    )


def delete_from_pb(r: pb.DeleteRangeRequest) -> kv.DeleteRangeRequest:
    return kv.DeleteRangeRequest(key=r.key, range_end=r.range_end, prev_kv=r.prev_kv)


def _compare_from_pb(c: pb.Compare) -> kv.Compare:
    which = c.WhichOneof("target_union")
    value: int | bytes = getattr(c, which) if which is not None else 0
    if c.target == pb.Compare.VALUE and which is None:
        value = b""
    return kv.Compare(
        key=c.key,
        target=kv.CompareTarget(c.target),
        result=kv.CompareResult(c.result),
        value=value,
        range_end=c.range_end,
    )


def op_from_pb(op: pb.RequestOp) -> kv.RequestOp:
    which = op.WhichOneof("request")
    if which == "request_range":
        return range_from_pb(op.request_range)
    if which == "request_put":
        return put_from_pb(op.request_put)
    if which == "request_delete_range":
        return delete_from_pb(op.request_delete_range)
    return txn_from_pb(op.request_txn)


def txn_from_pb(r: pb.TxnRequest) -> kv.TxnRequest:
    return kv.TxnRequest(
        compare=[_compare_from_pb(c) for c in r.compare],
        success=[op_from_pb(o) for o in r.success],
        failure=[op_from_pb(o) for o in r.failure],
    )


def range_to_pb(res: kv.RangeResult, header: pb.ResponseHeader | None = None) -> pb.RangeResponse:
    return pb.RangeResponse(
        header=header or pb.ResponseHeader(revision=res.revision),
        kvs=[kv_to_pb(k) for k in res.kvs],
        more=res.more,
        count=res.count,
    )


def put_to_pb(res: kv.PutResult, header: pb.ResponseHeader | None = None) -> pb.PutResponse:
    out = pb.PutResponse(header=header or pb.ResponseHeader(revision=res.revision))
    if res.prev_kv is not None:
        out.prev_kv.CopyFrom(kv_to_pb(res.prev_kv))
    return out


def delete_to_pb(
    res: kv.DeleteRangeResult, header: pb.ResponseHeader | None = None
) -> pb.DeleteRangeResponse:
    return pb.DeleteRangeResponse(
        header=header or pb.ResponseHeader(revision=res.revision),
        deleted=res.deleted,
        prev_kvs=[kv_to_pb(k) for k in res.prev_kvs],
    )


def _response_op_to_pb(res: kv.ResponseOp) -> pb.ResponseOp:
    # Inner headers carry only the revision, as etcd fills only the outer header.
    if isinstance(res, kv.RangeResult):
        return pb.ResponseOp(response_range=range_to_pb(res))
    if isinstance(res, kv.PutResult):
        return pb.ResponseOp(response_put=put_to_pb(res))
    if isinstance(res, kv.DeleteRangeResult):
        return pb.ResponseOp(response_delete_range=delete_to_pb(res))
    return pb.ResponseOp(response_txn=txn_to_pb(res))


def txn_to_pb(res: kv.TxnResult, header: pb.ResponseHeader | None = None) -> pb.TxnResponse:
    return pb.TxnResponse(
        header=header or pb.ResponseHeader(revision=res.revision),
        succeeded=res.succeeded,
        responses=[_response_op_to_pb(r) for r in res.responses],
    )
