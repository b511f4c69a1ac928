expect: finding
rule: aws-access-key
comment: an example ID in a docstring, a 40-character class name two lines below: a class name is no secret
pair: AKIAG7SRDG77VOCWRT6O -

def account_of(key_id):
    """Example: "AKIAG7SRDG77VOCWRT6O" => "123456789012"."""
    return TestSecretsManagerRotationLambdaHandler2.decode(key_id)
