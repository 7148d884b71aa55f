"""A linear softmax classifier with fixed weights: PROBS = softmax(FEATURES @ W + b), CLASS = argmax."""


import numpy as np
import triton_python_backend_utils as pb_utils

# Rows: features (sepal length, sepal width, petal length, petal width); columns: 3 classes.
WEIGHTS = np.array(
    [[0.4, 0.1, -0.5], [1.2, -0.4, -0.8], [-1.6, 0.2, 1.4], [-0.8, -0.6, 1.6]],
    dtype=np.float32,
)
BIAS = np.array([0.3, 1.0, -1.3], dtype=np.float32)


def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = x.astype(np.float32) @ WEIGHTS + BIAS
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p.astype(np.float32), p.argmax(axis=1).astype(np.int64).reshape(-1, 1)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for r in requests:
            probs, cls = predict(pb_utils.get_input_tensor_by_name(r, "FEATURES").as_numpy())
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("PROBS", probs), pb_utils.Tensor("CLASS", cls)])
            )
        return responses
