"""Events scoring publishes on ``scoring.events``."""
from marshmallow import fields

from ._fields import Tolerant, when


class IndicatorsRecomputed(Tolerant):
    period = fields.String(required=True)
    events = fields.Integer(required=True)
    seconds = fields.Float(required=True)
    at = when()


SCHEMAS = {"indicators_recomputed": IndicatorsRecomputed}
