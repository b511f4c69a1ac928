expect: finding
rule: aws-access-key
comment: a test client with the secret "something"; 17 lines below, an XML block holds another key ID with its own secret: that secret is the block's, not the test key's
pair: AKIAH7RH4MBQEQEFGOSL -
pair: AKIASRA42RH62HJWXJNK tcnT7TOHHqHzrqRlGOGKV2dK7BZff2F8HBgqvp8X

client = factory(
    aws_access_key_id="AKIAH7RH4MBQEQEFGOSL",
    aws_secret_access_key="something",
)
# step 0 of the test
# step 1 of the test
# step 2 of the test
# step 3 of the test
# step 4 of the test
# step 5 of the test
# step 6 of the test
# step 7 of the test
# step 8 of the test
# step 9 of the test
RESPONSE = """
<Credentials>
  <AccessKeyId>AKIASRA42RH62HJWXJNK</AccessKeyId>
  <SecretAccessKey>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</SecretAccessKey>
</Credentials>
"""
