"""The serving signatures of a zoo model, built from what it declares it can do.

    serving_default(x)            -> reconstruction
    encode(x)                     -> mean, stddev   (discrete codes: codes; autoencoder: code)  [latent models]
    decode(z)                     -> mean           (discrete codes: z is a grid of code indices)  [latent models]
    sample(n, seed)               -> samples        (seed < 0: a fresh random draw)
    elbo(x, seed)                 -> elbo           (single-sample ELBO, nats)
    log_likelihood(x, k, seed)    -> log_likelihood (importance-sampled, k draws)
    anomaly_score(x)              -> score, reconstruction_error

Conditional models take ``labels`` with every signature that sees x, and
``sample`` draws one example per label. Every function checks its inputs in
the graph, so a served model names a bad request instead of failing deep inside.
"""

import tensorflow as tf

from vae_zoo.limits import MAX_IMPORTANCE_SAMPLES, MAX_LOG_LIKELIHOOD_DRAWS, MAX_SAMPLES
from vae_zoo.models.objectives import importance_log_likelihood

# anomaly_score is a deterministic function of x: its ELBO uses this fixed seed.
ANOMALY_SEED = (20240, 7)


def _seed_pair(seed):
    """A stateless seed from a scalar: (seed, 0), or a random pair when seed < 0."""
    seed = tf.cast(_shaped(seed, (), "seed"), tf.int32)
    random_pair = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
    return tf.where(seed >= 0, tf.stack([seed, 0]), random_pair)


def _shaped(tensor, expected, what):
    """``tensor``, once a run-time check found its full shape to be ``expected`` (``None`` matches any size).

    Loaded signatures do not enforce their declared shapes at run time. The check sits on the data path (a
    ``tf.cond`` that the tensor flows through), so nothing downstream runs on a tensor of the wrong shape and
    meets TensorFlow's own error ("In[0] is not a matrix") first.
    """
    if not expected:
        return _scalar(tensor, what)
    # The declared spec gives the tensor a static rank, and Grappler folds shape checks against it: read the
    # shape through PlaceholderWithDefault, whose output shape is unknown to shape inference.
    actual = tf.shape(tf.raw_ops.PlaceholderWithDefault(input=tensor, shape=tf.TensorShape(None)))
    rank = len(expected)
    # Pad or cut the actual shape to the expected rank so the comparison itself cannot fail.
    padded = tf.concat([actual, tf.fill([rank], -1)], axis=0)[:rank]
    good = tf.equal(tf.size(actual), rank)
    for i, size in enumerate(expected):
        if size is not None:
            good = tf.logical_and(good, tf.equal(padded[i], size))
    shown = ", ".join("batch" if size is None else str(size) for size in expected)

    def refuse():
        with tf.control_dependencies([tf.debugging.Assert(False, [f"{what} must have shape ({shown}); got shape", actual])]):
            return tf.identity(tensor)

    return tf.cond(good, lambda: tf.identity(tensor), refuse)


def _scalar(tensor, what):
    """``tensor`` as a scalar, once a run-time check found it holds one value.

    A declared scalar's shape is fully known, so Grappler folds every Shape, Size and Rank of it to the declared
    (), whatever was sent. The count of its elements is read from tf.where, whose output size depends on the
    values and cannot be folded (x >= 0 or x < 0 holds for every integer)."""
    flat = tf.reshape(tensor, [-1])
    count = tf.shape(tf.where(tf.logical_or(flat >= 0, flat < 0)))[0]

    def refuse():
        with tf.control_dependencies([tf.debugging.Assert(False, [f"{what} must be a single number; got", count, "values"])]):
            return tf.identity(flat)

    return tf.reshape(tf.cond(tf.equal(count, 1), lambda: tf.identity(flat), refuse), [])


def _checked_labels(model, labels, batch_of=None):
    """A conditional model's labels once checked: a vector, as long as the batch, each a class index."""
    name = model.registered_name
    labels = _shaped(labels, (None,), f"{name}: labels")
    checks = [
        tf.debugging.assert_non_negative(labels, message=f"{name}: labels must be >= 0"),
        tf.debugging.assert_less(labels, tf.cast(model.num_classes, labels.dtype), message=f"{name}: labels must be < {model.num_classes}"),
    ]
    if batch_of is not None:
        checks.append(tf.debugging.assert_equal(tf.shape(labels)[0], tf.shape(batch_of)[0], message=f"{name}: the inputs and labels need the same batch size"))
    with tf.control_dependencies(checks):
        return tf.identity(labels)


def _checked(model, x, labels=None):
    """In-graph checks that name the problem in a serving error instead of failing deep inside."""
    name = model.registered_name
    x = _shaped(x, (None, *model.data_shape), f"{name}: input x")
    if labels is not None:
        labels = _checked_labels(model, labels, batch_of=x)
    if not x.dtype.is_floating:  # token ids: each must name a token of the vocabulary
        checks = [tf.debugging.assert_non_negative(x, message=f"{name}: token ids must be >= 0"),
                  tf.debugging.assert_less(x, tf.cast(model.vocabulary_size, x.dtype),
                                           message=f"{name}: token ids must be < {model.vocabulary_size}")]
        with tf.control_dependencies(checks):
            return tf.identity(x), labels
    x = tf.debugging.assert_all_finite(x, f"{name}: input x contains NaN or infinity")
    support = getattr(getattr(model, "likelihood", None), "support", None)
    if support is not None:
        low, high = support
        inside = tf.reduce_all((x >= low) & (x <= high))
        with tf.control_dependencies([tf.debugging.Assert(inside, [f"{name}: input x must lie in [{low:g}, {high:g}]; got min and max",
                                                                   tf.reduce_min(x), tf.reduce_max(x)])]):
            x = tf.identity(x)
    return x, labels


def serving_signatures(model):
    """(name, function, input specs) for every signature that applies to ``model``, from its capabilities."""
    x_spec, *label_specs = model.input_specs()
    seed_spec = tf.TensorSpec([], tf.int32, name="seed")
    conditional = model.can("labels")

    def with_labels(fn):
        # Conditional models take labels after x; unconditional ones never see the argument.
        if conditional:
            return fn
        return lambda x, *rest: fn(x, None, *rest)

    def reconstruction(x, labels):
        x, labels = _checked(model, x, labels)
        return {"reconstruction": model.reconstruction(x, labels)}

    def encode(x, labels):
        x, labels = _checked(model, x, labels)
        return model.encoded_outputs(x, labels)

    def decode(z, labels):
        spec = model.decoder_input_spec()
        z = _shaped(z, tuple(spec.shape), f"{model.registered_name}: input {spec.name}")
        if labels is not None:
            labels = _checked_labels(model, labels, batch_of=z)
        if z.dtype.is_floating:
            z = tf.debugging.assert_all_finite(z, f"{model.registered_name}: input {spec.name} contains NaN or infinity")
        return model.decoded_outputs(z, labels)

    def anomaly_score(x, labels):
        x, labels = _checked(model, x, labels)
        error = model.reconstruction_error(x, model.reconstruction(x, labels))
        if not model.can("elbo"):
            return {"score": error, "reconstruction_error": error}
        elbo = model.loss_terms(x, labels, seed=tf.constant(ANOMALY_SEED))["elbo"]
        return {"score": -elbo, "reconstruction_error": error}

    signatures = [("serving_default", with_labels(reconstruction), [x_spec, *label_specs])]
    if model.can("latent"):
        signatures += [
            ("encode", with_labels(encode), [x_spec, *label_specs]),
            ("decode", with_labels(decode), [model.decoder_input_spec(), *label_specs]),
        ]
    signatures.append(("anomaly_score", with_labels(anomaly_score), [x_spec, *label_specs]))
    if model.can("elbo"):
        def elbo(x, labels, seed):
            x, labels = _checked(model, x, labels)
            return {"elbo": model.loss_terms(x, labels, seed=_seed_pair(seed))["elbo"]}

        def log_likelihood(x, labels, k, seed):
            x, labels = _checked(model, x, labels)
            k = _shaped(k, (), "log_likelihood: k")
            draws = tf.cast(k, tf.int64) * tf.cast(tf.shape(x)[0], tf.int64)
            with tf.control_dependencies([
                tf.debugging.assert_positive(k, message="log_likelihood: k must be >= 1"),
                tf.debugging.assert_less_equal(k, MAX_IMPORTANCE_SAMPLES, message=f"log_likelihood: k must be <= {MAX_IMPORTANCE_SAMPLES}"),
                tf.debugging.assert_less_equal(draws, tf.constant(MAX_LOG_LIKELIHOOD_DRAWS, tf.int64), message=(
                    f"log_likelihood: batch size x k must be <= {MAX_LOG_LIKELIHOOD_DRAWS}; send fewer examples per request")),
            ]):
                k = tf.identity(k)
            return {"log_likelihood": importance_log_likelihood(model, x, labels, k=k, seed=_seed_pair(seed))}

        signatures += [
            ("elbo", with_labels(elbo), [x_spec, *label_specs, seed_spec]),
            ("log_likelihood", with_labels(log_likelihood), [x_spec, *label_specs, tf.TensorSpec([], tf.int32, name="k"), seed_spec]),
        ]
    if model.can("sample"):
        if conditional:
            def sample(labels, seed):
                labels = _checked_labels(model, labels)
                too_many = tf.debugging.assert_less_equal(tf.size(labels), MAX_SAMPLES, message=f"sample: at most {MAX_SAMPLES} labels")
                with tf.control_dependencies([too_many]):
                    labels = tf.identity(labels)
                return {"samples": model.sample(tf.shape(labels)[0], seed=_seed_pair(seed), labels=labels)}

            signatures.append(("sample", sample, [*label_specs, seed_spec]))
        else:
            def sample(n, seed):
                n = _shaped(n, (), "sample: n")
                with tf.control_dependencies([
                    tf.debugging.assert_non_negative(n, message="sample: n must be >= 0"),
                    tf.debugging.assert_less_equal(n, MAX_SAMPLES, message=f"sample: n must be <= {MAX_SAMPLES}"),
                ]):
                    n = tf.identity(n)
                return {"samples": model.sample(n, seed=_seed_pair(seed))}

            signatures.append(("sample", sample, [tf.TensorSpec([], tf.int32, name="n"), seed_spec]))
    return signatures
