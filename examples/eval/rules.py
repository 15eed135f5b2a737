"""Rule judges for the examples: the number of words (a pure length preference)."""


def words(prompt, completion):
    return float(len(completion.split()))
