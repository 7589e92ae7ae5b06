-- Attempts whose verification failed record the failure kind `verification` (issue 10): what
-- folding their events gives since then. Earlier ones stored none.
UPDATE attempts SET failure = 'verification'
 WHERE status = 'failed' AND failure IS NULL AND error LIKE 'verification failed:%';
