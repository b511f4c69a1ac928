expect: finding
rule: aws-access-key
comment: an ID beside an ARN and an S3 URL whose 40-character runs hold digits: pieces of an ARN or a URL are no secret
pair: AKIAUMLYWY4VX2RIJUNT -

access_key = "AKIAUMLYWY4VX2RIJUNT"
role_arn   = "arn:aws:iam::123456789012:role/Deploy2024Pipe7Xq9ZkT3mW8vL5nR2bJ4w"
source     = "s3://bkt/2024/06/build9Q7mZ3xT8vK2nL5pW4rJ6.zip"
