"""Names shared by the scoring function, export, the server and the client.

No other module spells these strings.
"""

# Inputs
IMAGES = "images"
Z_INPUT = "z"
IMAGE_BYTES = "image_bytes"

# Outputs
ANOMALY_SCORE = "anomaly_score"
RESIDUAL_SCORE = "residual_score"
FEATURE_SCORE = "feature_score"
Z_DISTANCE = "z_distance"
IS_ANOMALY = "is_anomaly"
P_VALUE = "p_value"
RESIDUAL_MAP = "residual_map"
RECONSTRUCTION = "reconstruction"
Z = "z"
GENERATED_IMAGES = "images"

SCORE_OUTPUTS = (ANOMALY_SCORE, RESIDUAL_SCORE, FEATURE_SCORE, Z_DISTANCE)
MAP_OUTPUTS = (RESIDUAL_MAP, RECONSTRUCTION)

# Signature names
SCORE = "score"
SCORE_UINT8 = "score_uint8"
SCORE_IMAGE_BYTES = "score_image_bytes"
RESIDUAL_MAP_SIGNATURE = "residual_map"
ENCODE = "encode"
GENERATE = "generate"
SERVING_DEFAULT = "serving_default"
